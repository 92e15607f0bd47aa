"""`audit(uri, params)`: open the dataset (whatever state it is in), scan it, derive the figures."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pyarrow as pa

from curate import _native, log
from curate.audit.lineage import lineage
from curate.audit.near import NEAR_ROWS, Probe, sample_signatures, wilson
from curate.audit.scan import (
    ROW_SAMPLE,
    AuditParams,
    NumStats,
    Partial,
    ShardSpec,
    map_shards,
    scan,
)
from curate.audit.scan import thresholds as key_thresholds
from curate.audit.sketches import HLL_P, hll_count
from curate.errors import InputError, UsageError
from curate.io.dataset import Dataset, open_dataset
from curate.io.location import STDIO
from curate.io.parquet import open_parquet
from curate.run.proc import imports_done, tune_malloc

WINDOW = 8
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
Z = 1.96


def refuse_stdin(uri: str | None, option: str = "IN") -> None:
    """Row counts first (the sample thresholds), then the MinHash sample, then every row: several
    passes over random-access shards, which a stream on stdin cannot give."""
    if uri == STDIO:
        raise UsageError("audit reads its input several times (row counts, samples, every row): "
                         "give a dataset directory, not '-'", where=option,
                         hint="write the upstream stage to a directory instead of '-', "
                              "e.g. `curate filter web clean/ --where ...`, then `curate audit clean/`")


def _open(uri: str) -> tuple[Dataset, str | None]:
    """The dataset, and what is wrong with its manifest if that alone keeps it from opening."""
    refuse_stdin(uri)
    try:
        return open_dataset(uri), None
    except InputError as e:
        if "no input files" in e.message:
            return Dataset(uri, [], None), None
        if "manifest" not in e.message and "incomplete" not in e.message:
            raise
        ds = open_dataset(uri.rstrip("/") + "/**.parquet") if "://" not in uri else open_dataset(uri.rstrip("/") + "/*.parquet")
        return Dataset(uri, ds.shards, None), e.message


def _classify(schema: pa.Schema) -> tuple[str | None, list[str], list[str], list[str], list[str]]:
    text = "text" if "text" in schema.names else None
    problems = []
    if text and not (pa.types.is_string(schema.field("text").type) or pa.types.is_large_string(schema.field("text").type)):
        problems.append(f"column 'text' is {schema.field('text').type}, not a string: text figures left out")
        text = None
    if "text" not in schema.names:
        problems.append("no 'text' column: the other columns are audited, text and duplication figures left out")
    numeric, strings, other = [], [], []
    for f in schema:
        if f.name in ("text", "id"):
            continue
        t = f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            numeric.append(f.name)
        elif (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)
              or (pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)))):
            strings.append(f.name)
        else:
            other.append(f"{f.name} ({t})")
    return text, numeric, strings, other, problems


def _quantiles(v: np.ndarray) -> dict:
    v = v[~np.isnan(v)]  # infinities are values (and inverted_cdf picks, never interpolates)
    return {str(q): float(np.quantile(v, q, method="inverted_cdf")) for q in QUANTILES} if len(v) else {}


def _histogram(v: np.ndarray, scale: float, bins: int = 30) -> list[list[float]]:
    """Linear bins between the sample's 0.5% and 99.5% quantiles (the tails in the end bins),
    counts scaled from the sample to the rows it stands for."""
    if len(v) == 0:
        return []
    lo, hi = (float(x) for x in np.quantile(v, [0.005, 0.995]))
    if hi <= lo:
        return [[lo, lo, round(len(v) * scale)]]
    edges = np.linspace(lo, hi, bins + 1)
    counts = np.bincount(np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1), minlength=bins)
    return [[float(edges[i]), float(edges[i + 1]), round(float(counts[i]) * scale)] for i in range(bins)]


def _estimate_total(m: list, n_all: int) -> dict:
    """A total over all rows from the audited rows' (n, sum, sum of squares), with a 95% interval
    (finite-population corrected); exact when every row was audited."""
    n, s, s2 = m
    if n == 0:
        return {"value": 0, "ci95": [0, 0], "exact": n_all == 0}
    mean = s / n
    if n >= n_all:
        return {"value": int(round(s)), "ci95": [int(round(s))] * 2, "exact": True}
    var = max(s2 / n - mean * mean, 0.0) * n / max(n - 1, 1)
    se = n_all * math.sqrt(var / n) * math.sqrt(1 - n / n_all)
    est = n_all * mean
    return {"value": est, "ci95": [est - Z * se, est + Z * se], "exact": False}


def _near(p: Partial, params: AuditParams, total: int) -> dict | None:
    """The in-sample figures (clusters within S); in a full audit, the corpus-wide rate over them."""
    out = _near_in_sample(p, params)
    if out is None:
        return None
    if p.near_found is not None:  # full audit: each sampled document against the whole corpus
        n, k = out["sample_docs"], int(p.near_found.sum())
        out["in_sample"] = {"rate": out["rate"], "ci95": out["ci95"], "docs_with_near_duplicate": out["docs_with_near_duplicate"]}
        out |= {"scope": "corpus", "lower_bound": False, "docs_with_near_duplicate": k, "rate": k / n if n else 0.0,
                "ci95": wilson(k, n, p.signed), "population": p.signed,
                "method": "each sampled document against every document of the corpus (LSH band keys, "
                          "signature agreement >= threshold); Wilson 95% CI, finite-population corrected"}
    else:
        every = min(params.sample or total, params.near_sample) >= total  # S is every document
        out |= {"scope": "sample", "lower_bound": not every,
                "method": "sampled documents against each other only" + ("" if every else
                          ": a lower bound for the corpus (near copies outside the sample are not seen)")}
    return out


def _near_in_sample(p: Partial, params: AuditParams) -> dict | None:
    if not p.near_keys:
        return None
    keys = np.concatenate(p.near_keys)
    sig = np.ascontiguousarray(np.concatenate(p.near_sigs))
    order = np.argsort(keys, kind="stable")  # the same order for any -j
    sig = sig[order]
    n = len(sig)
    # Many short bands: a pair at the threshold is a candidate almost surely (1-(1-0.8^6)^21 = 0.998,
    # at 0.85: 0.99995), unlike dedup's S-curve; each candidate is checked on its signatures.
    bands, rows = params.num_perm // NEAR_ROWS, NEAR_ROWS
    bk = np.empty((n, bands), np.uint64)
    _native.band_keys(sig, params.num_perm, bands, rows, bk)
    # Bands one at a time (in C): pairs of equal band keys up to WINDOW apart in the key order; a
    # pair already joined (through earlier bands) is not checked again, so a heavily duplicated
    # sample costs about one band's pairs, not 21 bands' worth. A pair is accepted when its
    # signatures agree on >= threshold x num_perm values (the MinHash estimate of Jaccard) after a
    # first look at 32 values drops clear misses (below half: a pair at 0.8 falls there with
    # probability ~1e-5); pairs_found counts accepted pairs not yet joined at their band's start.
    parent = np.empty(n, np.int64)
    found = _native.near_in_sample(sig, params.num_perm, bk, bands, WINDOW, params.threshold, parent)
    sizes = np.bincount(parent, minlength=n)
    sizes = sizes[sizes > 0]
    in_dup = int(sizes[sizes > 1].sum())
    cs, cn = np.unique(sizes, return_counts=True)
    return {
        "sample_docs": n, "docs_with_near_duplicate": in_dup, "rate": in_dup / n, "ci95": wilson(in_dup, n),
        "removable": (n - len(sizes)) / n, "pairs_found": found, "bands": bands, "rows": rows,
        "threshold": params.threshold, "num_perm": params.num_perm, "ngram": params.ngram,
        "cluster_sizes": [[int(s), int(k)] for s, k in zip(cs, cn, strict=True)],
    }


def audit(uri: str, params: AuditParams) -> dict:
    imports_done()
    tune_malloc()
    # numpy asks for transparent huge pages for arrays of 4 MB and more; the audit makes many
    # short-lived ones (chunks, signatures, sketches), and the kernel zeroes a whole 2 MB page at
    # each first touch: ~10% of the CPU of `--sample` on corpus-2GB. Normal pages while it runs
    # (the workers inherit the setting), restored after.
    toggle = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    before = toggle(False) if toggle else None
    try:
        return _audit(uri, params)
    finally:
        if toggle:
            toggle(before)


def _audit(uri: str, params: AuditParams) -> dict:
    problems: list[str] = []
    ds, manifest_problem = _open(uri)
    if manifest_problem:
        problems.append(f"manifest: {manifest_problem}")
    shards = ds.shards
    row_counts, schema, disk = [], None, 0
    for s in shards:
        md = open_parquet(s.loc).metadata
        row_counts.append(md.num_rows)
        disk += s.size
        if schema is None:
            schema = md.schema.to_arrow_schema()
    total = sum(row_counts)
    if not shards:
        problems.append("no Parquet shards: the dataset is empty")
    elif total == 0:
        problems.append("the dataset has no rows")
    text, numeric, strings, other, p2 = _classify(schema or pa.schema([]))
    problems += p2 if shards else []
    tokens = "n_tokens" in numeric
    t_sample, t_near, t_rows = key_thresholds(row_counts, params)
    first, specs = 0, []
    for i, (s, rows) in enumerate(zip(shards, row_counts, strict=True)):
        specs.append(ShardSpec(i, s.loc, first, text, tuple(numeric), tuple(strings), tokens, t_sample, t_near, t_rows, params))
        first += rows
    log.info(f"audit: {len(shards)} shard(s), {total:,} rows" + (f", a sample of {min(params.sample, total):,}" if params.sample else ""))
    specs = [s for s, r in zip(specs, row_counts, strict=True) if r]
    probe = None
    if text and params.sample is None and specs:
        probe = _sample_probe(specs, params)
        specs = [replace(s, probe=True) for s in specs]
    p = scan(specs, params.workers, probe)
    if probe is not None:  # S as signed in the first pass (none when every text is empty)
        p.near_keys, p.near_sigs = ([probe.keys], [probe.sigs]) if len(probe.keys) else ([], [])
    # the near-duplicate check (C, without the GIL) in a thread, beside the exact-duplicate merge
    threads = ThreadPoolExecutor(1)
    near = threads.submit(_near, p, params, total) if text and total else None
    threads.shutdown(wait=False)
    audited = p.audited
    lin = lineage(ds.manifest, f"manifest: {manifest_problem}" if manifest_problem else None)
    report = {
        "dataset": uri,
        "sample": {"requested": params.sample, "docs": audited, "of": total, "fraction": audited / total if total else 0.0,
                   "seed": params.seed, "uniform": True} if params.sample else None,
        "size": {"documents": total, "shards": len(shards), "bytes_on_disk": disk, "columns": len(schema or [])},
        "text": None, "duplication": None,
        "columns": {"numeric": [], "strings": [], "other": other},
        "lineage": lin,
        "problems": problems + [q for q in lin["problems"] if q not in problems],
    }
    sample_keys = np.concatenate(p.sample_keys) if p.sample_keys else np.empty(0, np.uint64)
    order = np.argsort(sample_keys, kind="stable")
    cols = {k: np.concatenate(v)[order] for k, v in p.sample_cols.items()}
    if text and total:
        words = {"value": p.words, "exact": True} if audited == total else _estimate_total(p.words_moments, total)
        chars = {"value": p.chars, "exact": True} if audited == total else _estimate_total(p.chars_moments, total)
        report["text"] = {
            "bytes": p.text_bytes, "characters": chars, "empty_documents": p.empty,
            "units": "tokens" if tokens else "words",
            "tokens": p.numeric["n_tokens"].total if tokens else None,
            "words": None if tokens else words,
            "length_quantiles": {"characters": _quantiles(cols.get("_chars", np.empty(0))),
                                 ("tokens" if tokens else "words"): _quantiles(cols.get("n_tokens" if tokens else "_words", np.empty(0)))},
            "quantile_rows": len(sample_keys),
            "quantile_rank_error": _dkw(len(sample_keys), total),
            "length_histogram": {"characters": p.chars_hist.bins(),
                                 "words": p.words_hist.bins() if not tokens else None},
        }
        hll = hll_count(p.hll) if p.hll is not None else 0.0
        report["duplication"] = {
            "exact": p.exact.summary() | {"normalize": "whitespace"},
            "near": near.result(),
            "ngrams": {"n": params.ngram, "distinct_est": hll, "rel_error_1sd": 1.04 / math.sqrt(1 << HLL_P),
                       "shingles_counted": p.shingles, "over": "sample" if params.sample else "all",
                       "method": f"datasketch HyperLogLog p={HLL_P} over 32-bit 5-gram hashes (per document distinct)"},
            "lines": {"top": p.lines.top(params.top), "max_undercount": p.lines.error, "total": p.lines.total,
                      "method": f"Misra-Gries, {p.lines.k} counters over whitespace-normalised line hashes"},
            "paragraphs": {"top": p.paragraphs.top(params.top), "max_undercount": p.paragraphs.error, "total": p.paragraphs.total,
                           "method": f"Misra-Gries, {p.paragraphs.k} counters over blank-line-separated paragraphs"},
        }
    for c in numeric:
        st = p.numeric.get(c) or NumStats()
        report["columns"]["numeric"].append(_numeric_entry(c, st, cols.get(c, np.empty(0))))
        if st.count == 0 and total:
            report["problems"].append(f"column {c}: every value is null or NaN")
        if st.pos_infs or st.neg_infs:
            report["problems"].append(f"column {c}: {st.pos_infs + st.neg_infs:,} infinite value(s) "
                                      f"({st.pos_infs:,} +inf, {st.neg_infs:,} -inf)")
    for c in strings:
        counts = p.categories.get(c)
        if counts is None:
            report["columns"]["strings"].append({"name": c, "distinct": f"> {MAX_CATS}", "mix": None})
            continue
        mix = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        report["columns"]["strings"].append({"name": c, "distinct": len(mix), "mix": [[k, v] for k, v in mix]})
    return report


MAX_CATS = 1000


def json_float(x: float | None) -> float | str | None:
    """Strict JSON has no Infinity or NaN: an infinite figure is the string "inf" or "-inf" (NaN
    values are never figures, they are counted in "nans"); the views print these strings as they are."""
    if x is None or math.isfinite(x):
        return x
    return None if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _numeric_entry(name: str, st: NumStats, v: np.ndarray) -> dict:
    """One numeric column: count + nulls + nans = rows (count includes the pos_infs + neg_infs
    infinities); min, max, mean, sum and quantiles include them, the histogram is of finite values."""
    v = v[~np.isnan(v)]  # the row sample's values: nulls come as NaN
    finite = v[np.isfinite(v)]
    has = st.count > 0
    return {"name": name, "count": st.count, "nulls": st.nulls, "nans": st.nans,
            "pos_infs": st.pos_infs, "neg_infs": st.neg_infs,
            "min": json_float(st.lo) if has else None, "max": json_float(st.hi) if has else None,
            "mean": json_float(st.mean()), "sum": json_float(st.sum()),
            "quantiles": {q: json_float(x) for q, x in _quantiles(v).items()},
            "histogram": _histogram(finite, st.finite / len(finite) if len(finite) else 0.0),
            "quantile_rows": int(len(v))}


def _sign_sample(spec: ShardSpec):
    prm = spec.params
    return sample_signatures(spec.loc, spec.first_gid, spec.text, spec.t_near, prm.seed, prm.ngram, prm.num_perm)


def _sample_probe(specs: list[ShardSpec], params: AuditParams) -> Probe:
    """Full audit, first pass: the MinHash sample's signatures (only row groups holding one are
    read), in row-key order so that the tables are the same for any -j."""
    got = list(map_shards(_sign_sample, specs, params.workers))
    keys = np.concatenate([k for k, _ in got])
    sigs = np.concatenate([s for _, s in got])
    order = np.argsort(keys, kind="stable")
    log.info(f"audit: MinHash sample of {len(keys):,} documents signed; every document against it")
    return Probe(keys[order], sigs[order], params.threshold, params.num_perm)


def _dkw(n: int, total: int) -> float:
    """95% bound on the rank error of a quantile from n sampled values (Dvoretzky-Kiefer-Wolfowitz)."""
    if n == 0 or n >= total:
        return 0.0
    return math.sqrt(math.log(2 / 0.05) / (2 * n))


__all__ = ["audit", "AuditParams", "ROW_SAMPLE"]
