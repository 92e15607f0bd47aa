"""One module per stage. A stage imports no click: the CLI calls it."""
