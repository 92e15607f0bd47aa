"""curate's MinHash shingling in pure Python, for the dedup benchmark's peers and corpus generator.

curate (curate/text/arrow.py + curate/_native.c) shingles a document as follows:

  1. lower-case every code point (Arrow's utf8_lower: simple, one code point to one);
  2. punctuation and symbols (Unicode P*, S*) -> space, decimal digits (Nd) -> '0', separators
     and controls (Z*, Cc) -> space (Unicode 14 tables; Python 3.11's unicodedata is 14.0 too);
  3. whitespace runs collapsed, trimmed: words separated by single spaces;
  4. shingles = the text spans of 5 consecutive words (a document with 1-4 words is one shingle,
     one with no word has none), hashed with MurmurHash64A (seed 0x5EED), of which curate's
     MinHash and --verify keep the low 32 bits.

`shingles(text)` returns the same shingles as strings, so that datasketch and rensa (and the
corpus generator's Jaccard figures) work on exactly curate's sets. `murmur64` exists only to
check that claim (`python dedup_shingles.py --check DATASET` in curate's venv compares the hashed
sets with curate.stages.dedup_minhash.shingle_set document by document).

No third-party imports: this module runs in the peers' venv and in curate's.
"""

from __future__ import annotations

import sys
import unicodedata

NGRAM = 5
SEED = 0x5EED
_MASK = (1 << 64) - 1


def _map(cp: int) -> str | None:
    c = chr(cp)
    low = c.lower()
    low = low[0] if low else c  # simple case mapping: one code point (U+0130 -> 'i', as utf8proc)
    cat = unicodedata.category(low)
    if cat == "Nd":
        return "0"
    if cat[0] in "PSZ" or cat == "Cc":
        return " "
    return low if low != c else None


class _Table(dict):
    """str.translate table filled on first use of each code point (no start-up cost)."""

    def __missing__(self, cp: int):
        v = _map(cp)
        if v is None:
            self[cp] = cp
            return cp
        self[cp] = v
        return v


_TABLE = _Table()
for _cp in range(128):  # ASCII up front: str.translate then takes its ASCII fast path
    _TABLE[_cp] = _TABLE.__missing__(_cp)


def words(text: str) -> list[str]:
    return text.translate(_TABLE).split()


def shingles(text: str, n: int = NGRAM) -> list[str]:
    """Word n-grams of the simple-normalised text, as curate makes them (may repeat)."""
    w = text.translate(_TABLE).split()
    if len(w) >= n:
        if n == 5:
            return [f"{a} {b} {c} {d} {e}" for a, b, c, d, e in zip(w, w[1:], w[2:], w[3:], w[4:], strict=False)]
        return [" ".join(w[i : i + n]) for i in range(len(w) - n + 1)]
    return [" ".join(w)] if w else []


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def murmur64(data: bytes, seed: int = SEED) -> int:
    """MurmurHash64A, as curate/_native.c (slow: for checking only)."""
    m, r = 0xC6A4A7935BD1E995, 47
    n = len(data)
    h = (seed ^ (n * m)) & _MASK
    nb = n // 8
    for i in range(nb):
        k = int.from_bytes(data[8 * i : 8 * i + 8], "little")
        k = (k * m) & _MASK
        k ^= k >> r
        k = (k * m) & _MASK
        h ^= k
        h = (h * m) & _MASK
    tail = data[8 * nb :]
    if tail:
        for j in range(len(tail) - 1, -1, -1):
            h ^= tail[j] << (8 * j)
        h = (h * m) & _MASK
    h ^= h >> r
    h = (h * m) & _MASK
    h ^= h >> r
    return h


def check(dataset: str, limit: int | None = None) -> int:
    """Compare with curate's own shingle sets on every document of a dataset (curate's venv)."""
    from pathlib import Path

    import numpy as np
    import pyarrow.parquet as pq

    from curate.stages.dedup_minhash import shingle_set

    files = sorted(Path(dataset).glob("part-*.parquet"))
    n = bad = 0
    for f in files:
        for b in pq.ParquetFile(f).iter_batches(columns=["id", "text"], batch_size=4096):
            for doc_id, text in zip(b.column("id").to_pylist(), b.column("text").to_pylist(), strict=True):
                theirs = shingle_set(text, NGRAM, None)
                mine64 = {murmur64(s.encode()) for s in shingles(text)}
                if len(theirs) and int(theirs.max()) < 1 << 32:  # curate keeps 32 bits of each hash
                    mine64 = {h & 0xFFFFFFFF for h in mine64}
                mine = np.array(sorted(mine64), np.uint64)
                if len(mine) != len(theirs) or not np.array_equal(mine, theirs):
                    bad += 1
                    if bad <= 5:
                        print(f"differs: {doc_id}: {len(mine)} vs {len(theirs)} shingles", file=sys.stderr)
                n += 1
                if limit and n >= limit:
                    break
            if limit and n >= limit:
                break
    print(f"dedup_shingles: {n} documents compared with curate's shingle_set, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Check the pure-Python shingles against curate's.")
    ap.add_argument("--check", required=True, metavar="DATASET", help="a Parquet dataset directory")
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents")
    a = ap.parse_args()
    sys.exit(check(a.check, a.limit))
