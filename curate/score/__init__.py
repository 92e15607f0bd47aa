"""Scorers: each adds numeric columns to a batch (curate score runs several in one pass)."""
