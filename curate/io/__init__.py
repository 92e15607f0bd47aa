"""Dataset layer: where data lives, how batches are read, how shards are written."""
