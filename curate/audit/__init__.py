"""`curate audit`: what is in a corpus, how duplicated it is, and what each stage removed."""
