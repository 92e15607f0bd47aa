"""The filter language: lexer -> parser -> syntax tree -> compiler (pyarrow.compute over record
batches), named rules and presets, corpus quantiles with a stated error bound, dry-run reports."""
