"""Text helpers shared by dedup, scoring and DSIR: normalisation, hashing, shingles."""
