#!/usr/bin/env python3
"""Exact all-pairs word-5-gram Jaccard join (prefix filtering), the ground truth of the dedup bench.

Runs in curate's venv and uses curate's own shingles: the text simple-normalised by curate's C
normaliser, cut into word 5-grams exactly as curate's kernel cuts them (see shingle_sets, curate/_native.c), and
hashed with 64 bits. Output: every pair of documents whose shingle sets have Jaccard >=
--threshold (default 0.7), exactly. `--check-curate N` compares the set sizes of the first N
documents with curate.stages.dedup_minhash.shingle_set (the sets curate's --verify uses).

Method (AllPairs, Bayardo et al. 2007, vectorised with numpy):
  1. shingle sets of all documents; documents with no shingle take no part (curate: "nobody's
     duplicate"); identical sets are collapsed to one representative (their pairs have J = 1);
  2. every token (shingle hash) is replaced by its rank in ascending corpus frequency, so that a
     set's first tokens are its rarest;
  3. prefix filter: two sets with J >= t share a token among the first |x| - ceil(t |x|) + 1
     tokens of each; candidate pairs = pairs of sets sharing a prefix token, minus pairs that fail
     the length filter t |y| <= |x| <= |y| / t;
  4. each candidate's exact intersection size (binary search of the smaller set's tokens in the
     larger one's), kept when inter / union >= t (compared in integers: no rounding at 0.7);
  5. representatives expanded back to all the members of their identical-set groups.

    python exact_jaccard.py DATASET_DIR [--out DIR] [--threshold 0.7]
    python exact_jaccard.py DATASET_DIR --brute         # also the O(n^2) join, to check (small only)

Writes OUT/pairs.parquet (a, b: document numbers in dataset order, a < b; inter, union, jaccard),
OUT/docs.parquet (id, shingles) and OUT/join.json (counts, timings, the cache key). OUT defaults to
DATASET_DIR/../exact-<threshold>. Cached: rerunning with the same dataset and threshold is a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.text.arrow import hash128, normalize

NGRAM = 5
VERSION = 2


def log(msg: str) -> None:
    print(f"exact_jaccard: {msg}", file=sys.stderr, flush=True)


def shards(dataset: Path) -> list[Path]:
    return sorted(dataset.glob("part-*.parquet"))


def dataset_key(dataset: Path) -> str:
    h = hashlib.sha256()
    for f in shards(dataset):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{pq.ParquetFile(f).metadata.num_rows}\n".encode())
    m = dataset / "_manifest.json"
    if m.exists():
        h.update(m.read_bytes())
    return h.hexdigest()[:16]


def shingle_hashes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(sizes int64[n], tokens uint64): each document's sorted distinct shingle hashes.

    The shingles are curate's: its C normaliser ("simple"), then the strings of 5 consecutive
    words joined by one space (a text of 1-4 words is one shingle, an empty one has none), as
    curate's kernel cuts them. They are hashed here with 64 bits (MurmurHash3_x64_128, low half,
    curate's hash128 kernel) rather than with the 32 bits curate's MinHash uses, so that the
    join is exact up to a 2^-64 collision. All in Arrow/numpy: no Python loop per shingle.
    """
    norm = normalize(text, "simple")
    n = len(norm)
    lists = pc.split_pattern(norm, pattern=" ")
    offs = np.asarray(lists.offsets)[: n + 1].astype(np.int64)
    offs = offs - offs[0]
    flat = lists.flatten()
    nw = np.diff(offs)
    nbytes = pc.binary_length(norm).to_numpy(zero_copy_only=False)
    nw[nbytes == 0] = 0  # "" splits into one empty word: no shingle
    m = len(flat)
    sep = pa.scalar(" ", flat.type)
    if m >= NGRAM:
        grams = pc.binary_join_element_wise(*[flat.slice(k, m - NGRAM + 1) for k in range(NGRAM)], sep)
        long_docs = np.flatnonzero(nw >= NGRAM)
        cnt = nw[long_docs] - NGRAM + 1
        idx = np.repeat(offs[long_docs], cnt) + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        h_long = hash128(grams.take(pa.array(idx)))[:, 0]
        d_long = np.repeat(long_docs, cnt)
    else:
        h_long, d_long = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    short = np.flatnonzero((nw > 0) & (nw < NGRAM))
    h_short = hash128(norm.take(pa.array(short)))[:, 0] if len(short) else np.zeros(0, np.uint64)
    h = np.concatenate([h_long, h_short])
    d = np.concatenate([d_long, short]).astype(np.int64)
    order = np.lexsort((h, d))
    h, d = h[order], d[order]
    keep = np.ones(len(h), bool)
    keep[1:] = (h[1:] != h[:-1]) | (d[1:] != d[:-1])
    h, d = h[keep], d[keep]
    return np.bincount(d, minlength=n).astype(np.int64), h


def load_sets(dataset: Path) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(ids, sizes int64[n], tokens uint64[sum sizes]) of every document, in dataset order."""
    ids, sizes, chunks = [], [], []
    for f in shards(dataset):
        for b in pq.ParquetFile(f).iter_batches(columns=["id", "text"], batch_size=8192, use_threads=False):
            ids.append(b.column("id"))
            z, h = shingle_hashes(b.column("text"))
            sizes.append(z)
            chunks.append(h)
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
    del chunks
    ids_arr = pa.concat_arrays([c.cast(pa.large_string()) for c in ids]) if ids else pa.array([], pa.large_string())
    return ids_arr, np.concatenate(sizes) if sizes else np.zeros(0, np.int64), tokens


def collapse_identical(sizes: np.ndarray, tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """rep[i]: the first document with the same (non-empty) set as i; i itself when unique or empty."""
    n = len(sizes)
    rep = np.arange(n)
    live = np.flatnonzero(sizes > 0)
    if len(live) == 0:
        return rep
    # fingerprint: (size, sum of tokens, sum of mixed tokens), all mod 2^64; equal sets -> equal prints
    mixed = (tokens * np.uint64(0x9E3779B97F4A7C15)) ^ (tokens >> np.uint64(29))
    s1 = np.add.reduceat(tokens, starts[live]) if len(tokens) else np.zeros(0, np.uint64)
    s2 = np.add.reduceat(mixed, starts[live]) if len(tokens) else np.zeros(0, np.uint64)
    order = np.lexsort((live, s2, s1, sizes[live]))
    keys = np.stack([sizes[live][order].astype(np.uint64), s1[order], s2[order]], axis=1)
    same = np.all(keys[1:] == keys[:-1], axis=1)
    i = 0
    while i < len(order) - 1:
        if not same[i]:
            i += 1
            continue
        j = i
        while j < len(same) and same[j]:
            j += 1
        members = live[order[i : j + 1]]  # ascending document number within equal prints
        first = members[0]
        a = tokens[starts[first] : starts[first] + sizes[first]]
        for m in members[1:]:
            if np.array_equal(a, tokens[starts[m] : starts[m] + sizes[m]]):
                rep[m] = first
            else:  # a fingerprint collision: never seen, but stay exact
                log(f"fingerprint collision between documents {first} and {m}")
        i = j + 1
    return rep


def _pairs_in_groups(group_start: np.ndarray, group_len: np.ndarray, limit: int):
    """All (i, j), i < j, of positions within groups; yields chunks of at most ~limit pairs."""
    total = int(group_len.sum())
    pos = np.repeat(group_start, group_len) + (np.arange(total) - np.repeat(np.cumsum(group_len) - group_len, group_len))
    end = np.repeat(group_start + group_len, group_len)
    npairs = end - pos - 1  # each position pairs with all later positions in its group
    cum = np.cumsum(npairs)
    lo = 0
    while lo < len(pos):
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + limit, side="right"))
        hi = max(hi, lo + 1)
        c = npairs[lo:hi]
        first = np.repeat(pos[lo:hi], c)
        # second = first + 1 .. first + c
        k = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        yield first, first + 1 + k
        lo = hi


def join(sizes: np.ndarray, tokens: np.ndarray, t: Fraction, stats: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a, b, inter) of documents with Jaccard >= t, over identical-set representatives."""
    n = len(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    t0 = time.monotonic()
    rep = collapse_identical(sizes, tokens, starts)
    reps = np.flatnonzero((rep == np.arange(n)) & (sizes > 0))
    stats["identical_collapsed"] = int((rep != np.arange(n)).sum())
    stats["sets_joined"] = len(reps)
    stats["t_collapse"] = round(time.monotonic() - t0, 1)

    # every token -> its rank in (corpus frequency, hash) order: rare tokens first. Any fixed
    # order keeps the prefix filter exact; rare-first makes the prefixes nearly private.
    t0 = time.monotonic()
    perm = np.argsort(tokens)
    srt = tokens[perm]
    first = np.ones(len(srt), bool)
    first[1:] = srt[1:] != srt[:-1]
    uniq = srt[first]
    del srt
    bounds = np.flatnonzero(first)
    cnt = np.diff(np.append(bounds, len(tokens))).astype(np.uint32)
    del bounds
    rank_of = np.empty(len(uniq), np.uint32)
    rank_of[np.lexsort((uniq, cnt))] = np.arange(len(uniq), dtype=np.uint32)
    stats["distinct_shingles"] = len(uniq)
    del cnt, uniq
    gid = np.cumsum(first, dtype=np.uint32)
    gid -= np.uint32(1)
    del first
    rank = np.empty(len(tokens), np.uint32)
    rank[perm] = rank_of[gid]
    del perm, gid, rank_of
    # key = (representative number << 32 | rank) for the tokens of representatives, sorted
    rep_no = np.full(n, -1, np.int64)
    rep_no[reps] = np.arange(len(reps))
    key = np.repeat(rep_no.astype(np.uint64) << np.uint64(32), sizes)
    key |= rank
    del rank
    key = key[np.repeat(rep_no >= 0, sizes)]
    key.sort()
    rl = sizes[reps]
    stats["t_rank"] = round(time.monotonic() - t0, 1)

    # prefix filter
    t0 = time.monotonic()
    m = len(rl)
    rstart = np.concatenate([[0], np.cumsum(rl)[:-1]]).astype(np.int64)
    need = -((-t.numerator * rl) // t.denominator)  # ceil(t |x|)
    plen = rl - need + 1
    pidx = np.repeat(rstart, plen) + (np.arange(int(plen.sum())) - np.repeat(np.cumsum(plen) - plen, plen))
    pkey = key[pidx]
    del pidx
    pdoc = (pkey >> np.uint64(32)).astype(np.int64)
    prank = pkey & np.uint64(0xFFFFFFFF)
    del pkey
    order = np.lexsort((pdoc, prank))
    prank, pdoc = prank[order], pdoc[order]
    new = np.ones(len(prank), bool)
    new[1:] = prank[1:] != prank[:-1]
    gstart = np.flatnonzero(new)
    glen = np.diff(np.append(gstart, len(prank)))
    multi = glen > 1
    gstart, glen = gstart[multi], glen[multi]
    stats["prefix_tokens"] = int(len(prank))
    stats["prefix_postings_max"] = int(glen.max()) if len(glen) else 0
    stats["candidate_pairs_raw"] = int((glen * (glen - 1) // 2).sum())
    cand = []
    for i, j in _pairs_in_groups(gstart, glen, 20_000_000):
        a, b = pdoc[i], pdoc[j]
        la, lb = rl[a], rl[b]
        lo, hi = np.minimum(la, lb), np.maximum(la, lb)
        ok = lo * t.denominator >= hi * t.numerator  # length filter
        a, b = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
        cand.append(np.unique(a.astype(np.uint64) * np.uint64(m) + b.astype(np.uint64)))
    c = np.unique(np.concatenate(cand)) if cand else np.zeros(0, np.uint64)
    del cand, prank, pdoc
    ca, cb = (c // np.uint64(max(m, 1))).astype(np.int64), (c % np.uint64(max(m, 1))).astype(np.int64)
    stats["candidate_pairs"] = len(ca)
    stats["t_candidates"] = round(time.monotonic() - t0, 1)

    # verify: binary-search the smaller set's tokens in the larger one's
    t0 = time.monotonic()
    swap = rl[ca] > rl[cb]
    small, large = np.where(swap, cb, ca), np.where(swap, ca, cb)
    inter = np.zeros(len(ca), np.int64)
    pos = 0
    budget = 20_000_000
    while pos < len(ca):
        cs = np.cumsum(rl[small[pos:]])
        end = pos + max(1, int(np.searchsorted(cs, budget, side="right")))
        s, lg = small[pos:end], large[pos:end]
        ls = rl[s]
        idx = np.repeat(rstart[s], ls) + (np.arange(int(ls.sum())) - np.repeat(np.cumsum(ls) - ls, ls))
        q = (np.repeat(lg.astype(np.uint64), ls) << np.uint64(32)) | (key[idx] & np.uint64(0xFFFFFFFF))
        hit = np.searchsorted(key, q)
        hit = (hit < len(key)) & (key[np.minimum(hit, len(key) - 1)] == q)
        inter[pos:end] = np.add.reduceat(hit.astype(np.int64), np.concatenate([[0], np.cumsum(ls)[:-1]]))
        pos = end
    union = rl[ca] + rl[cb] - inter
    good = inter * t.denominator >= union * t.numerator
    stats["t_verify"] = round(time.monotonic() - t0, 1)
    a, b, inter = reps[ca[good]], reps[cb[good]], inter[good]
    stats["rep_pairs"] = len(a)

    # expand identical-set groups: members of one group pair with J = 1, and a pair of
    # representatives stands for every pair of their members
    members: dict[int, list[int]] = {}
    for d in np.flatnonzero(rep != np.arange(n)).tolist():
        members.setdefault(int(rep[d]), [int(rep[d])]).append(d)
    out_a, out_b, out_i = [a], [b], [inter]
    ea, eb, ei = [], [], []
    for g in members.values():
        for x in range(len(g)):
            for y in range(x + 1, len(g)):
                ea.append(g[x])
                eb.append(g[y])
                ei.append(int(sizes[g[x]]))
    if members:
        grp_a = np.isin(a, list(members))
        grp_b = np.isin(b, list(members))
        for k in np.flatnonzero(grp_a | grp_b).tolist():
            xs = members.get(int(a[k]), [int(a[k])])
            ys = members.get(int(b[k]), [int(b[k])])
            for x in xs:
                for y in ys:
                    if (x, y) != (int(a[k]), int(b[k])):
                        ea.append(x)
                        eb.append(y)
                        ei.append(int(inter[k]))
    out_a.append(np.asarray(ea, np.int64))
    out_b.append(np.asarray(eb, np.int64))
    out_i.append(np.asarray(ei, np.int64))
    pa_, pb_, pi_ = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_i)
    pa_, pb_ = np.minimum(pa_, pb_), np.maximum(pa_, pb_)
    o = np.lexsort((pb_, pa_))
    return pa_[o], pb_[o], pi_[o]


def brute(sizes: np.ndarray, tokens: np.ndarray, t: Fraction) -> set[tuple[int, int]]:
    """Every pair, by Python sets: O(n^2), for checking the join on small corpora."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sets = [set(tokens[s : s + z].tolist()) for s, z in zip(starts, sizes, strict=True)]
    out = set()
    n = len(sets)
    for i in range(n):
        si = sets[i]
        if not si:
            continue
        for j in range(i + 1, n):
            sj = sets[j]
            if not sj or min(len(si), len(sj)) * t.denominator < max(len(si), len(sj)) * t.numerator:
                continue
            inter = len(si & sj)
            if inter * t.denominator >= (len(si) + len(sj) - inter) * t.numerator:
                out.add((i, j))
    return out


def run(dataset: Path, out: Path | None = None, threshold: str = "0.7", check_brute: bool = False, force: bool = False) -> Path:
    t = Fraction(threshold)
    out = out or dataset.parent / f"exact-{threshold}"
    key = {"version": VERSION, "dataset": dataset_key(dataset), "threshold": threshold, "ngram": NGRAM}
    stamp = out / "join.json"
    if not force and stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        log(f"{out} cached")
        return out
    out.mkdir(parents=True, exist_ok=True)
    stats: dict = {}
    t0 = time.monotonic()
    ids, sizes, tokens = load_sets(dataset)
    stats["docs"] = len(sizes)
    stats["empty_docs"] = int((sizes == 0).sum())
    stats["shingles"] = int(len(tokens))
    stats["t_shingle"] = round(time.monotonic() - t0, 1)
    log(f"{len(sizes):,} documents, {len(tokens):,} shingles ({stats['t_shingle']} s)")
    a, b, inter = join(sizes, tokens, t, stats)
    union = sizes[a] + sizes[b] - inter
    stats["pairs"] = len(a)
    stats["pairs_ge_0.8"] = int((inter * 5 >= union * 4).sum())
    stats["seconds"] = round(time.monotonic() - t0, 1)
    log(f"{len(a):,} pairs with J >= {threshold} ({stats})")
    if check_brute:
        want = brute(sizes, tokens, t)
        got = set(zip(a.tolist(), b.tolist(), strict=True))
        stats["brute_check"] = {"pairs": len(want), "missing": len(want - got), "extra": len(got - want)}
        log(f"brute-force check: {stats['brute_check']}")
        if want != got:
            sys.exit("exact_jaccard: the prefix-filter join differs from the brute-force join")
    pq.write_table(pa.table({"a": a, "b": b, "inter": inter, "union": union, "jaccard": inter / np.maximum(union, 1)}), out / "pairs.parquet")
    pq.write_table(pa.table({"id": ids, "shingles": sizes}), out / "docs.parquet")
    stamp.write_text(json.dumps({"key": key, "dataset": str(dataset), **stats}, indent=1))
    return out


def check_truth(out: Path, truth: Path) -> dict:
    """Every injected copy with J >= threshold to its parent must be a pair, with that J."""
    docs = pq.read_table(out / "docs.parquet").column("id").to_pylist()
    num = {d: i for i, d in enumerate(docs)}
    p = pq.read_table(out / "pairs.parquet")
    jj = dict(zip(zip(p.column("a").to_pylist(), p.column("b").to_pylist(), strict=True), p.column("jaccard").to_pylist(), strict=True))
    th = float(json.loads((out / "join.json").read_text())["key"]["threshold"])
    n = missing = wrong = 0
    for line in truth.read_text().splitlines():
        r = json.loads(line)
        if r["doc_id"] not in num or r.get("parent", r["original"]) not in num:
            continue
        x, y = sorted((num[r["doc_id"]], num[r.get("parent", r["original"])]))
        if r["jaccard5"] >= th + 1e-9:
            n += 1
            if (x, y) not in jj:
                missing += 1
            elif abs(jj[(x, y)] - r["jaccard5"]) > 1e-5:
                wrong += 1
    return {"truth_pairs": n, "missing": missing, "wrong_jaccard": wrong}


def check_curate(dataset: Path, limit: int) -> dict:
    """Distinct-shingle counts per document against curate's own shingle_set (its hashes are
    32-bit, so a rare 32-bit collision inside a document may make curate's set one smaller)."""
    from curate.stages.dedup_minhash import shingle_set

    n = same = off_by_collision = 0
    for f in shards(dataset):
        for b in pq.ParquetFile(f).iter_batches(columns=["text"], batch_size=1024, use_threads=False):
            z, _ = shingle_hashes(b.column("text"))
            for text, k in zip(b.column("text").to_pylist(), z.tolist(), strict=True):
                c = len(shingle_set(text, NGRAM, None))
                same += c == k
                off_by_collision += 0 < k - c <= 1
                n += 1
                if n >= limit:
                    return {"documents": n, "same_size": same, "one_less_in_curate": off_by_collision}
    return {"documents": n, "same_size": same, "one_less_in_curate": off_by_collision}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threshold", default="0.7", help="Jaccard threshold, as a decimal (exact arithmetic) [0.7]")
    ap.add_argument("--brute", action="store_true", help="Also run the O(n^2) join and compare (small corpora only).")
    ap.add_argument("--truth", type=Path, default=None, help="truth.jsonl to check against [DATASET/../truth.jsonl]")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--check-curate", type=int, default=0, metavar="N",
                    help="Compare the first N documents' set sizes with curate's shingle_set.")
    a = ap.parse_args()
    if a.check_curate:
        log(f"against curate's shingle_set: {check_curate(a.dataset, a.check_curate)}")
    out = run(a.dataset, a.out, a.threshold, a.brute, a.force)
    truth = a.truth or a.dataset.parent / "truth.jsonl"
    if truth.exists():
        log(f"truth check ({truth}): {check_truth(out, truth)}")
    print(out)


if __name__ == "__main__":
    main()
