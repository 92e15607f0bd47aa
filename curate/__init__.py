"""curate: curate pretraining corpora for language models, one sharded Parquet dataset at a time."""

__version__ = "0.2.0"
