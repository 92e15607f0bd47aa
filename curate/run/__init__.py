"""Executors: which tasks run where, resume, progress, stats."""
