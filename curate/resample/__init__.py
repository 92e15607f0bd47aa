"""Resampling maths: document weights, domain mixtures, budgets and the samplers (see curate/stages/resample.py)."""
