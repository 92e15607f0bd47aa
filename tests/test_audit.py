"""curate audit: every figure checked against an independent computation on small datasets, bad
input reported plainly, and the HTML report rendered in a real headless Chromium."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.audit.html import render
from curate.audit.report import AuditParams, audit
from curate.audit.sketches import ExactDup, HeavyHitters, hll_count, hll_registers, row_keys
from tests.conftest import run

# lower-case letters only: the "simple" normal form of MinHash and 5-grams keeps them as they are
WORDS = ["".join(w) for w in itertools.islice(itertools.product("abcdefghijklmnopqrstuvwxyz", repeat=3), 3000)]


def _write(root: Path, table: pa.Table, shards: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    n = table.num_rows
    for k in range(shards):
        lo, hi = k * n // shards, (k + 1) * n // shards
        pq.write_table(table.slice(lo, hi - lo), root / f"part-{k:05d}.parquet", row_group_size=97)
    return root


def _doc(rng: random.Random, lo: int = 5, hi: int = 200) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    # whitespace of every kind between words, and lines, some of them boilerplate
    seps = [rng.choice([" ", " ", " ", "  ", "\t", "\n"]) for _ in words]
    body = "".join(w + s for w, s in zip(words, seps, strict=True)).strip()
    if rng.random() < 0.3:
        body += "\n" + rng.choice(["Subscribe to our newsletter", "All rights reserved.", "Click here"])
    return body


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    """1,200 documents: exact copies (some differing only in whitespace), near copies (one word in
    ~110+ changed), a numeric column with nulls, a domain column."""
    rng = random.Random(7)
    docs = [_doc(rng) for _ in range(1000)]
    for _ in range(120):  # exact copies
        d = rng.choice(docs[:1000])
        docs.append(d if rng.random() < 0.5 else "  " + d.replace(" ", "   ", 1) + " ")
    for _ in range(80):  # near copies of long documents: Jaccard >= 0.9, clear of MinHash's noise at 0.8
        src = rng.choice([d for d in docs[:1000] if len(d.split()) >= 110])
        w = src.split(" ")
        w[rng.randrange(len(w))] = "changed"
        docs.append(" ".join(w))
    rng.shuffle(docs)
    rows = [{"id": str(i), "text": t, "score": (None if i % 17 == 0 else rng.gauss(5, 2)),
             "domain": rng.choice(["a.com", "b.org", "c.net", "a.com"])} for i, t in enumerate(docs)]
    root = _write(tmp_path_factory.mktemp("audit") / "ds", pa.Table.from_pylist(rows))
    return root, rows


@pytest.fixture(scope="module")
def report(corpus) -> dict:
    return audit(str(corpus[0]), AuditParams(workers=1))


def _norm_ws(t: str) -> str:
    return " ".join(t.split())


def test_size_and_lengths(corpus, report):
    _, rows = corpus
    texts = [r["text"] for r in rows]
    assert report["size"]["documents"] == len(rows) and report["size"]["shards"] == 3
    t = report["text"]
    assert t["characters"] == {"value": sum(len(x) for x in texts), "exact": True}
    assert t["bytes"] == sum(len(x.encode()) for x in texts)
    assert t["words"]["value"] == sum(len(x.split()) for x in texts) and t["words"]["exact"]
    chars = np.array([len(x) for x in texts])
    words = np.array([len(x.split()) for x in texts])
    for q, v in t["length_quantiles"]["characters"].items():
        assert v == np.quantile(chars, float(q), method="inverted_cdf")
    for q, v in t["length_quantiles"]["words"].items():
        assert v == np.quantile(words, float(q), method="inverted_cdf")
    assert sum(b[2] for b in t["length_histogram"]["characters"]) == len(rows)
    for lo, hi, c in t["length_histogram"]["words"]:
        assert c == int(((words >= lo) & (words < hi)).sum()) if lo >= 1 else True


def test_numeric_and_string_columns(corpus, report):
    _, rows = corpus
    vals = np.array([r["score"] for r in rows if r["score"] is not None])
    (e,) = [c for c in report["columns"]["numeric"] if c["name"] == "score"]
    assert e["count"] == len(vals) and e["nulls"] == sum(r["score"] is None for r in rows)
    assert e["min"] == vals.min() and e["max"] == vals.max() and math.isclose(e["mean"], vals.mean())
    for q, v in e["quantiles"].items():
        assert v == np.quantile(vals, float(q), method="inverted_cdf")
    assert sum(b[2] for b in e["histogram"]) == len(vals)
    (m,) = [c for c in report["columns"]["strings"] if c["name"] == "domain"]
    assert dict(map(tuple, m["mix"])) == Counter(r["domain"] for r in rows)


def test_exact_duplicates(corpus, report):
    _, rows = corpus
    norm = Counter(_norm_ws(r["text"]) for r in rows)
    ex = report["duplication"]["exact"]
    assert ex["exact"] and ex["docs_seen"] == len(rows)
    assert math.isclose(ex["rate"], (len(rows) - len(norm)) / len(rows))
    assert dict(map(tuple, ex["cluster_sizes"])) == Counter(norm.values())


def test_exact_duplicates_hash_sampled_within_interval():
    rng = np.random.default_rng(3)
    sizes = rng.geometric(0.6, 40_000)  # clusters of 1, 2, 3, ... copies
    h = np.repeat(rng.integers(0, 2**63, len(sizes), dtype=np.uint64) * np.uint64(2) + np.uint64(1), sizes)
    rng.shuffle(h)
    true = (sizes.sum() - len(sizes)) / sizes.sum()
    parts = []
    for chunk in np.array_split(h, 4):
        s = ExactDup(capacity=4096)
        for b in np.array_split(chunk, 10):
            s.add(b)
        parts.append(s)
    merged = parts[0]
    for s in parts[1:]:
        merged.merge(s)
    got = merged.summary()
    assert not got["exact"] and len(merged.keys) <= 4096
    assert got["ci95"][0] <= true <= got["ci95"][1]
    assert abs(got["distinct_docs_est"] - len(sizes)) < 0.1 * len(sizes)


def test_heavy_hitters_bound():
    rng = np.random.default_rng(5)
    items = np.concatenate([np.repeat(np.arange(20, dtype=np.uint64), rng.integers(50, 400, 20)),
                            rng.integers(1000, 10**9, 30_000).astype(np.uint64)])
    rng.shuffle(items)
    true = Counter(items.tolist())
    parts = []
    for chunk in np.array_split(items, 3):
        hh = HeavyHitters(k=64)
        for b in np.array_split(chunk, 20):
            k, c = np.unique(b, return_counts=True)
            hh.add(k, c.astype(np.int64), lambda i, k=k: str(k[i]))
        parts.append(hh)
    hh = parts[0]
    for p in parts[1:]:
        hh.merge(p)
    assert hh.error > 0 and hh.total == len(items)
    got = {int(k): int(c) for k, c in zip(hh.keys, hh.counts, strict=True)}
    for k, c in got.items():
        assert true[k] - hh.error <= c <= true[k]
    for k, c in true.items():
        if c > hh.error:
            assert k in got and hh.texts[k] == str(k)


def test_repeated_lines(corpus, report):
    _, rows = corpus
    lines = Counter(_norm_ws(ln) for r in rows for ln in r["text"].split("\n") if ln.strip())
    d = report["duplication"]["lines"]
    err, top = d["max_undercount"], d["top"]
    assert d["total"] == sum(lines.values()) and err <= d["total"] / 4097
    assert [_norm_ws(e["text"]) for e in top[:3]] == [k for k, _ in lines.most_common(3)]
    for e in top:
        assert lines[_norm_ws(e["text"])] - err <= e["count"] <= lines[_norm_ws(e["text"])]


def test_hll_registers_match_datasketch_and_count(corpus, report):
    from datasketch import HyperLogLog

    rng = np.random.default_rng(1)
    h = rng.integers(0, 2**32, 50_000, dtype=np.uint64)
    ref = HyperLogLog(p=14, hashfunc=lambda x: x)
    for x in h.tolist():
        ref.update(x)
    assert np.array_equal(hll_registers(h), ref.reg)
    # distinct word 5-grams of the corpus, counted exactly in Python (lower-case ASCII words: the
    # "simple" normal form is the whitespace-split words)
    grams = set()
    for r in corpus[1]:
        w = r["text"].split()
        grams.update(tuple(w[i:i + 5]) for i in range(len(w) - 4)) if len(w) >= 5 else grams.add(tuple(w))
    g = report["duplication"]["ngrams"]
    assert abs(g["distinct_est"] - len(grams)) <= 4 * g["rel_error_1sd"] * len(grams)
    assert hll_count(hll_registers(np.empty(0, np.uint64))) == 0


def test_near_duplicates_against_exact_jaccard(corpus, report):
    rows = corpus[1]
    sets = []
    for r in rows:
        w = _norm_ws(r["text"]).split()
        sets.append({tuple(w[i:i + 5]) for i in range(len(w) - 4)} if len(w) >= 5 else {tuple(w)})
    # candidates by a shared 5-gram, then the true Jaccard
    by_gram: dict = {}
    for i, s in enumerate(sets):
        for g in s:
            by_gram.setdefault(g, []).append(i)
    has = set()
    for ids in by_gram.values():
        for a in ids:
            for b in ids:
                if a < b and (a, b) and len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= 0.8:
                    has.update((a, b))
    near = report["duplication"]["near"]
    assert near["sample_docs"] == len(rows)
    # MinHash misses or adds only pairs close to the threshold (the corpus has few): allow a handful
    assert abs(near["docs_with_near_duplicate"] - len(has)) <= 3, (near["docs_with_near_duplicate"], len(has))
    lo, hi = near["ci95"]
    assert lo <= near["rate"] <= hi


def _true_near(texts: list[str]) -> np.ndarray:
    """Whether each document has another at 5-gram Jaccard >= 0.8 (exact sets, shared-gram candidates)."""
    sets = []
    for t in texts:
        w = t.split()
        sets.append({tuple(w[i:i + 5]) for i in range(len(w) - 4)} if len(w) >= 5 else {tuple(w)})
    by_gram: dict = {}
    for i, s in enumerate(sets):
        for g in s:
            by_gram.setdefault(g, set()).add(i)
    has = np.zeros(len(texts), bool)
    for i, s in enumerate(sets):
        for j in set().union(*(by_gram[g] for g in s)) - {i}:
            if len(s & sets[j]) / len(s | sets[j]) >= 0.8:
                has[i] = True
                break
    return has


@pytest.fixture(scope="module")
def near_corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    """900 documents: 600 distinct, 300 near copies of them (one word changed in >= 110). With a
    MinHash sample of 150, most sampled documents have their partner outside the sample."""
    rng = random.Random(11)
    base = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(110, 160))) for _ in range(600)]
    texts = list(base)
    for _ in range(300):
        w = rng.choice(base).split(" ")
        w[rng.randrange(len(w))] = "changed"
        texts.append(" ".join(w))
    rng.shuffle(texts)
    root = _write(tmp_path_factory.mktemp("near") / "ds", pa.Table.from_pylist([{"text": t} for t in texts]))
    return root, texts


def test_near_rate_over_the_corpus_from_a_sample(near_corpus):
    root, texts = near_corpus
    a = audit(str(root), AuditParams(near_sample=150, seed=5, workers=1))
    assert audit(str(root), AuditParams(near_sample=150, seed=5, workers=2)) == a
    near = a["duplication"]["near"]
    assert near["scope"] == "corpus" and not near["lower_bound"] and near["sample_docs"] == 150
    has = _true_near(texts)
    # the sampled rows: the 150 smallest row keys (the sample's definition), checked one by one
    gids = np.argsort(row_keys(np.arange(len(texts), dtype=np.uint64), 5), kind="stable")[:150]
    assert abs(near["docs_with_near_duplicate"] - int(has[gids].sum())) <= 2, (near, int(has[gids].sum()))
    lo, hi = near["ci95"]
    assert lo <= has.mean() <= hi, (near, has.mean())  # the corpus rate, which the sample estimates
    # the old figure, partners within the sample only, is far below: most partners are outside it
    assert near["in_sample"]["rate"] < 0.5 * near["rate"]
    assert near["in_sample"]["docs_with_near_duplicate"] <= near["docs_with_near_duplicate"]
    # --sample: within the sample, said to be a lower bound
    b = audit(str(root), AuditParams(sample=300, near_sample=150, seed=5, workers=1))["duplication"]["near"]
    assert b["scope"] == "sample" and b["lower_bound"] and "lower bound" in b["method"]
    whole = audit(str(root), AuditParams(sample=5000, seed=5, workers=1))["duplication"]["near"]
    assert whole["scope"] == "sample" and not whole["lower_bound"]
    assert abs(whole["rate"] - has.mean()) <= 3 / len(texts)


def test_sample_mode_is_seeded_uniform_and_says_so(corpus, report):
    root, rows = corpus
    a = audit(str(root), AuditParams(sample=400, seed=3, workers=1))
    b = audit(str(root), AuditParams(sample=400, seed=3, workers=2))
    c = audit(str(root), AuditParams(sample=400, seed=4, workers=1))
    assert a == b
    assert a["sample"]["docs"] == 400 and a["sample"]["of"] == len(rows)
    w = a["text"]["words"]
    assert not w["exact"] and w["ci95"][0] <= sum(len(r["text"].split()) for r in rows) <= w["ci95"][1]
    assert a["text"]["words"] != c["text"]["words"]
    assert a["duplication"]["near"]["sample_docs"] <= 400
    ch = a["text"]["characters"]
    assert not ch["exact"] and ch["ci95"][0] <= sum(len(r["text"]) for r in rows) <= ch["ci95"][1]
    # every-row figures stay exact
    assert a["text"]["bytes"] == sum(len(r["text"].encode()) for r in rows)
    assert a["duplication"]["exact"] == report["duplication"]["exact"]


def test_sample_figures_are_those_of_the_audited_rows(corpus):
    """--sample: the costly figures are worked out on chunks of audited rows; they must be the
    figures of exactly the rows with the smallest keys (words, 5-gram count, repeated lines)."""
    root, rows = corpus
    a = audit(str(root), AuditParams(sample=700, seed=2, workers=2))
    assert a == audit(str(root), AuditParams(sample=700, seed=2, workers=1))
    gids = np.argsort(row_keys(np.arange(len(rows), dtype=np.uint64), 2), kind="stable")[:700]
    texts = [rows[i]["text"] for i in gids]
    words = np.array([len(t.split()) for t in texts], np.float64)
    q = a["text"]["length_quantiles"]["words"]
    assert q == {k: float(np.quantile(words, float(k), method="inverted_cdf")) for k in q}
    grams = [{tuple(w[i:i + 5]) for i in range(len(w) - 4)} if len(w) >= 5 else {tuple(w)} for w in (t.split() for t in texts)]
    assert a["duplication"]["ngrams"]["shingles_counted"] == sum(len(g) for g in grams)
    lines = Counter(_norm_ws(ln) for t in texts for ln in t.split("\n") if ln.strip())
    d = a["duplication"]["lines"]
    assert d["total"] == sum(lines.values()) and d["top"]
    for e in d["top"]:
        assert lines[_norm_ws(e["text"])] - d["max_undercount"] <= e["count"] <= lines[_norm_ws(e["text"])]


def test_shingle_hll_and_minhash_hll_kernels_equal_sets_registers_signatures(corpus):
    from curate import _native
    from curate.text.arrow import buffers, normalize

    texts = [r["text"] for r in corpus[1][:400]] + ["", "a", "a b c d e f", "x x x x x x x x x"]
    off, data, wide = buffers(normalize(pa.array(texts), "simple"))
    for char_mode in (False, True):
        vals, _ = _native.shingle_sets(off, data, wide, char_mode, 5, 0x5EED)
        h = np.frombuffer(vals, np.uint64)
        reg = np.zeros(1 << 14, np.int8)
        assert _native.shingle_hll(off, data, wide, char_mode, 5, 0x5EED, 14, reg) == len(h)
        assert np.array_equal(reg, hll_registers(h))
    # MinHash and the registers in one pass: dedup minhash's signatures, the same registers
    from curate.audit.near import permutations, signatures

    a, b, seed = permutations(128)
    sig, cnt, reg2 = np.empty((len(texts), 128), np.uint32), np.empty(len(texts), np.int64), np.zeros(1 << 14, np.int8)
    total = _native.minhash_hll(off, data, wide, 5, a, b, sig, cnt, seed, 14, reg2)
    ref_sig, ref_cnt = signatures(pa.array(texts), 5, 128)
    assert np.array_equal(sig, ref_sig) and np.array_equal(cnt, ref_cnt)
    vals, _ = _native.shingle_sets(off, data, wide, False, 5, 0x5EED)
    assert total == len(vals) // 8 and np.array_equal(reg2, hll_registers(np.frombuffer(vals, np.uint64)))


def _near_reference(sig: np.ndarray, bands: int, rows: int, window: int, threshold: float):
    """The in-sample check as numpy did it before the C kernel (with its list of refused pairs)."""
    from curate import _native

    n, num_perm = sig.shape
    bk = np.empty((n, bands), np.uint64)
    _native.band_keys(sig, num_perm, bands, rows, bk)
    parent, refused, found = np.arange(n, dtype=np.int64), np.empty(0, np.int64), 0
    for j in range(bands):
        o = np.argsort(bk[:, j], kind="stable")
        s = bk[o, j]
        pairs = [(o[:-d][s[d:] == s[:-d]], o[d:][s[d:] == s[:-d]]) for d in range(1, window + 1) if d < n]
        a = np.concatenate([x for x, _ in pairs]) if pairs else np.empty(0, np.int64)
        b = np.concatenate([y for _, y in pairs]) if pairs else np.empty(0, np.int64)
        todo = parent[a] != parent[b]
        a, b = a[todo], b[todo]
        code = np.minimum(a, b) * n + np.maximum(a, b)
        fresh = ~np.isin(code, refused)
        a, b, code = a[fresh], b[fresh], code[fresh]
        keep = ((sig[a, :32] == sig[b, :32]).sum(1) >= 16) & ((sig[a] == sig[b]).sum(1) >= threshold * num_perm)
        refused = np.concatenate([refused, code[~keep]])
        found += int(keep.sum())
        _native.union_find(np.ascontiguousarray(a[keep]), np.ascontiguousarray(b[keep]), parent, False, True)
    return parent, found


@pytest.mark.parametrize("num_perm", [128, 24])
def test_near_in_sample_kernel_equals_numpy_reference(num_perm):
    """Clusters of signatures at agreements around the threshold (near misses come back band after
    band): the C kernel's components and pairs_found equal the numpy reference's."""
    from curate import _native

    rng = np.random.default_rng(num_perm)
    base = rng.integers(0, 2**32, (300, num_perm), dtype=np.uint32)
    src = rng.integers(0, 300, 3000)
    sig = base[src].copy()
    change = rng.random((3000, num_perm)) < rng.choice([0.02, 0.1, 0.2, 0.35], 3000)[:, None]
    sig[change] = rng.integers(0, 2**32, int(change.sum()), dtype=np.uint32)
    sig[::7, : num_perm // 2] ^= 1  # the low byte flipped: byte agreement without value agreement
    bands, rows = num_perm // 6, 6
    ref_parent, ref_found = _near_reference(sig, bands, rows, 8, 0.8)
    bk = np.empty((len(sig), bands), np.uint64)
    _native.band_keys(sig, num_perm, bands, rows, bk)
    parent = np.empty(len(sig), np.int64)
    found = _native.near_in_sample(sig, num_perm, bk, bands, 8, 0.8, parent)
    assert found == ref_found and found > 100
    assert np.array_equal(parent, ref_parent)  # roots are the smallest index either way


def test_parallel_equals_serial(corpus, report):
    assert audit(str(corpus[0]), AuditParams(workers=3)) == report


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, corpus) -> tuple[Path, Path]:
    """ingest -> dedup exact -> filter through the CLI: a real manifest chain."""
    root = tmp_path_factory.mktemp("pipe")
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps({"doc_id": r["id"], "text": r["text"], "domain": r["domain"],
                                       "score": r["score"]}) + "\n" for r in corpus[1]))
    assert run("ingest", src, root / "raw", "--id-field", "doc_id", "--shard-size", "300", "-q").exit_code == 0
    assert run("dedup", "exact", root / "raw", root / "exact", "-q", "-j", "1").exit_code == 0
    r = run("filter", root / "exact", root / "final", "--rule", "long=len(text) >= 200", "--rule", "scored=score is not null", "-q", "-j", "1")
    assert r.exit_code == 0, r.output
    return root / "raw", root / "final"


def test_lineage_funnel_and_rules(pipeline):
    raw, final = pipeline
    rep = audit(str(final), AuditParams(workers=1))
    lin = rep["lineage"]
    assert lin["status"] == "ok" and [c["stage"] for c in lin["chain"]] == ["ingest", "dedup_exact", "filter"]
    m = json.loads((final / "_manifest.json").read_text())
    assert lin["chain"][-1]["removed_by"] == {k.split(":", 1)[1]: v for k, v in m["counters"].items() if k.startswith("removed:")}
    exact = json.loads((final.parent / "exact" / "_manifest.json").read_text())
    assert lin["chain"][1]["removed_by"] == {"exact_duplicate": exact["totals"]["rows_rejected"]}
    assert [f["rows"] for f in lin["funnel"]] == [1200, 1200, exact["totals"]["rows_out"], rep["size"]["documents"]]
    assert all(c["on_disk"] in ("same", "this dataset") for c in lin["chain"])


def test_broken_chains_are_reported(pipeline, tmp_path):
    _, final = pipeline
    edited = tmp_path / "edited"
    shutil.copytree(final, edited)
    m = json.loads((edited / "_manifest.json").read_text())
    m["lineage"][1]["totals"]["rows_out"] += 5
    (edited / "_manifest.json").write_text(json.dumps(m))
    rep = audit(str(edited), AuditParams(workers=1))
    assert rep["lineage"]["status"] == "broken"
    assert any("broken chain: filter read" in p for p in rep["problems"])
    bad = tmp_path / "bad"
    shutil.copytree(final, bad)
    (bad / "_manifest.json").write_text("{oops")
    r = run("audit", bad, "-q")
    assert r.exit_code == 0 and "manifest is not valid JSON" in r.stdout and "documents" in r.stdout
    (bad / "_SUCCESS").unlink()
    (bad / "_manifest.json").write_text(json.dumps(m))
    r = run("audit", bad, "-q", "--json")
    assert r.exit_code == 0 and any("incomplete" in p for p in json.loads(r.stdout)["problems"])


def test_bad_input_never_crashes(tmp_path):
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "notext", pa.table({"a": [1, 2, 3], "domain": ["x", "y", "x"]}), 1)
    _write(tmp_path / "nulls", pa.table({"text": ["a b", "c", "a b"], "ppl": pa.array([None] * 3, pa.float64()),
                                         "n": [float("nan")] * 3}), 1)
    _write(tmp_path / "zero", pa.table({"text": pa.array([], pa.string())}), 1)
    expect = {"empty": "the dataset is empty", "notext": "no 'text' column", "nulls": "column ppl: every value is null",
              "zero": "no rows"}
    for name, msg in expect.items():
        r = run("audit", tmp_path / name, "-q", "--json")
        assert r.exit_code == 0, r.output
        rep = json.loads(r.stdout)
        assert any(msg in p for p in rep["problems"]), (name, rep["problems"])
        r = run("audit", tmp_path / name, "-q", "--html", tmp_path / f"{name}.html")
        assert r.exit_code == 0 and msg.split(":")[0] in r.stdout
    _write(tmp_path / "blank", pa.table({"text": ["", "", "!! ?"]}), 1)  # no 5-gram: no MinHash sample
    rep = json.loads(run("audit", tmp_path / "blank", "-q", "--json").stdout)
    assert rep["duplication"]["near"] is None and rep["text"]["empty_documents"] == 2
    (mix,) = json.loads(run("audit", tmp_path / "notext", "-q", "--json").stdout)["columns"]["strings"]
    assert mix["mix"] == [["x", 2], ["y", 1]]
    r = run("audit", tmp_path / "missing")
    assert r.exit_code == 1 and "no such file" in r.output


def _strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which strict JSON (jq, browsers) rejects."""
    def bad(c):
        raise ValueError(f"not strict JSON: {c}")
    return json.loads(text, parse_constant=bad)


def test_stdin_is_refused_plainly(tmp_path):
    """Audit makes several passes over random-access shards: '-' is a usage error, never an empty report."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("text", pa.string())])) as w:
        w.write_batch(pa.record_batch([pa.array(["a b c"] * 5)], names=["text"]))
    for data in (sink.getvalue().to_pybytes(), b"garbage\n"):
        r = run("audit", "-", "-q", "--json", input=data)
        assert r.exit_code == 2 and "not '-'" in r.output and "hint:" in r.output and r.stdout == "", r.output
    _write(tmp_path / "ds", pa.table({"text": ["a b c"]}), 1)
    r = run("audit", tmp_path / "ds", "--compare", "-", "-q", input=b"")
    assert r.exit_code == 2 and "--compare" in r.output and "not '-'" in r.output


def test_infinities_are_counted_and_shown(tmp_path):
    """values + nulls + NaNs = rows with infinities among the values; min/max/mean say inf, as
    strings in the JSON (strict JSON has no Infinity); the histogram is of the finite values."""
    inf = float("inf")
    x = [1.0] * 46 + [inf, None, float("nan"), 2.0]
    y = [1.0] * 48 + [inf, -inf]
    _write(tmp_path / "ds", pa.table({"text": [f"doc {i}" for i in range(50)], "x": x, "y": y}), 2)
    r = run("audit", tmp_path / "ds", "-q", "--json")
    assert r.exit_code == 0, r.output
    rep = _strict_json(r.stdout)
    cx, cy = rep["columns"]["numeric"]
    assert (cx["count"], cx["nulls"], cx["nans"], cx["pos_infs"], cx["neg_infs"]) == (48, 1, 1, 1, 0)
    assert cx["count"] + cx["nulls"] + cx["nans"] == 50
    assert (cx["min"], cx["max"], cx["mean"], cx["sum"]) == (1.0, "inf", "inf", "inf")
    assert cx["quantiles"]["1.0"] == "inf" and cx["quantiles"]["0.5"] == 1.0
    assert sum(b[2] for b in cx["histogram"]) == 47  # the finite values
    assert (cy["count"], cy["min"], cy["max"], cy["mean"], cy["sum"]) == (50, "-inf", "inf", None, None)
    assert any("column x: 1 infinite" in p for p in rep["problems"])
    r = run("audit", tmp_path / "ds", "-q", "--html", tmp_path / "r.html")
    (row,) = [ln for ln in r.stdout.splitlines() if ln.startswith("│ x ")]
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[1:3] == ["48", "2"] and cells[7] == "inf" and cells[8] == "inf"
    html = (tmp_path / "r.html").read_text()
    assert "<td>x</td><td>48</td><td>2</td><td>1</td>" in html and "<td>-inf</td>" in html


def test_html_into_a_missing_directory(tmp_path):
    _write(tmp_path / "ds", pa.table({"text": ["a b c"]}), 1)
    target = tmp_path / "missing" / "x.html"
    r = run("audit", tmp_path / "ds", "-q", "--html", target)
    assert r.exit_code == 1 and str(target) in r.output and "does not exist" in r.output and "hint:" in r.output, r.output
    assert "internal error" not in r.output and not (tmp_path / "missing").exists()


def test_seed_out_of_range_is_a_usage_error(tmp_path):
    _write(tmp_path / "ds", pa.table({"text": ["a b c", "d e f"]}), 1)
    for seed in ("-1", str(2**64)):
        r = run("audit", tmp_path / "ds", "-q", "--sample", "1", "--seed", seed)
        assert r.exit_code == 2 and "0<=x<=18446744073709551615" in r.output, r.output
    assert run("audit", tmp_path / "ds", "-q", "--sample", "1", "--seed", str(2**64 - 1), "--json").exit_code == 0


def test_compare_and_terminal(pipeline):
    raw, final = pipeline
    r = run("audit", final, "--compare", raw, "-q", "--json")
    got = json.loads(r.stdout)
    assert got["a"]["size"]["documents"] < got["b"]["size"]["documents"] == 1200
    r = run("audit", final, "--compare", raw, "-q")
    assert r.exit_code == 0 and str(raw) in r.stdout and "side by side" in r.stdout and "domain mix" in r.stdout
    r = run("audit", final, "-q")
    assert "most repeated lines" in r.stdout and "lineage" in r.stdout and "▁" in r.stdout or "█" in r.stdout


# ---- the HTML report in a real browser ---------------------------------------------------------

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browse(html: Path, shot: Path | None = None) -> tuple[str, list[str]]:
    """(DOM after load, console lines) of a page in headless Chromium. Console messages are logged
    on stderr as 'INFO:CONSOLE...' with --enable-logging; the report has no scripts, so any is an error."""
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
            "--hide-scrollbars", "--window-size=1200,2400"]
    p = subprocess.run(args + ["--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    console = [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]
    if shot is not None:
        subprocess.run(args + [f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120, check=True)
    return p.stdout, console


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="chromium not installed: run scripts/install_chromium.sh as root")


@needs_chromium
def test_browser_harness_sees_script_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>throw new Error("boom")</script></body></html>')
    _, console = browse(page)
    assert any("boom" in ln for ln in console)


@needs_chromium
def test_html_report_renders_in_chromium(pipeline, tmp_path):
    raw, final = pipeline
    out = tmp_path / "report.html"
    r = run("audit", final, "--compare", raw, "-q", "--html", out)
    assert r.exit_code == 0
    text = out.read_text()
    # one self-contained file: nothing to fetch, no scripts
    assert "<script" not in text and not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text) and "@import" not in text
    shot = tmp_path / "report.png"
    dom, console = browse(out, shot)
    assert console == [], console
    assert dom.count("<svg") >= 6
    for title in ("document length in characters", "duplicate cluster sizes", "domain mix", "per-stage funnel", "histogram of score"):
        assert f"<title>{title}</title>" in dom
    assert dom.count("<rect") > 50 and "<circle" in dom
    assert shot.stat().st_size > 20_000  # something was drawn


def test_render_single_report_has_every_plot(report):
    html = render(report)
    assert html.count("<svg") >= 4 and "log-log" in html and "domain mix" in html
