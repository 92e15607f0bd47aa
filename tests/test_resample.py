"""curate resample: weights, mixtures, budgets, epoch caps, methods, outputs, determinism, resume, bad input.

Statistical checks use fixed seeds and tolerances of several standard errors: they pass for a correct
sampler with these seeds and fail when the weights or the maths are wrong.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.resample import plan as pl
from curate.resample import sampling as sm
from curate.resample import weights as wt
from tests.conftest import curate_proc, read_rows, run, shard_bytes
from tests.test_resume import _kill9_after


def make_dataset(path: Path, n: int = 4000, shards: int = 4, seed: int = 0, **overrides) -> Path:
    """n documents over `shards` shards: id, text, n_tokens (10 each), domain (a: 1/4, b: 3/4),
    w (1 or 3), commonness, dup_count and dsir_logratio (= log w)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    i = np.arange(n)
    cols = {
        "id": [f"d{j:06d}" for j in i],
        "text": [f"document {j} " + "x" * int(rng.integers(5, 50)) for j in i],
        "n_tokens": np.full(n, 10, np.int64),
        "domain": np.where(i % 4 == 0, "a", "b"),
        "w": np.where(i % 2 == 0, 1.0, 3.0),
        "commonness": rng.uniform(0.05, 0.9, n),
        "dup_count": np.ones(n, np.int64),
    }
    cols["dsir_logratio"] = np.log(cols["w"])
    cols.update(overrides)
    t = pa.table({k: pa.array(v) for k, v in cols.items()})
    per = -(-n // shards)
    for s in range(shards):
        pq.write_table(t.slice(s * per, per), path / f"part-{s:05d}.parquet")
    return path


def counts_of(out: Path) -> np.ndarray:
    return np.array([r["sample_count"] for r in read_rows(out)])


def manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text())


def ok(*args):
    r = run("resample", *args, "-q")
    assert r.exit_code == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("rs") / "in")


# ---- weights ------------------------------------------------------------------------------------


def test_uniform_rows_budget_is_exact_and_accounted(ds, tmp_path):
    ok(ds, tmp_path / "o", "--rows", "1000", "-j", "1")
    c = counts_of(tmp_path / "o")
    assert len(c) == 4000 and c.sum() == 1000
    m = manifest(tmp_path / "o")
    assert m["totals"]["rows_in"] == m["totals"]["rows_out"] == 4000
    r = m["resample"]
    assert r["draws"] == 1000 and r["seed"] == 0 and r["method"] == "multinomial" and r["weights"]["mode"] == "uniform"
    assert r["max_repetition"] == int(c.max())
    sel = pq.read_table(tmp_path / "o" / "_selection.parquet").to_pylist()
    assert sum(x["count"] for x in sel) == 1000 and all(x["count"] > 0 for x in sel)
    assert len(sel) == int((c > 0).sum())


def test_column_weights_draw_in_proportion(ds, tmp_path):
    ok(ds, tmp_path / "o", "--weights", "column:w", "--rows", "40000", "--seed", "3")
    c = counts_of(tmp_path / "o")
    ratio = c[1::2].mean() / c[0::2].mean()
    # expected 3; a multinomial's standard error here is ~0.03
    assert abs(ratio - 3) < 0.12, ratio


def test_dsir_and_expr_equal_the_same_column(ds, tmp_path):
    ok(ds, tmp_path / "col", "--weights", "column:w", "--rows", "3000", "--seed", "5")
    ok(ds, tmp_path / "dsir", "--weights", "dsir", "--rows", "3000", "--seed", "5")
    ok(ds, tmp_path / "expr", "--weights", "expr:w * 2", "--rows", "3000", "--seed", "5")
    col = counts_of(tmp_path / "col")
    assert (col == counts_of(tmp_path / "dsir")).all()
    assert (col == counts_of(tmp_path / "expr")).all()  # a constant factor changes nothing


def test_softdedup_dup_count_gives_every_cluster_one_document_of_exposure(tmp_path):
    # 100 clusters of 10 copies and 1,000 unique documents
    n = 2000
    dc = np.where(np.arange(n) < 1000, 10, 1)
    d = make_dataset(tmp_path / "in", n=n, dup_count=dc)
    ok(d, tmp_path / "o", "--weights", "softdedup:dup_count", "--rows", "60000", "--hard-max-epochs", "64", "--seed", "1")
    c = counts_of(tmp_path / "o")
    per_cluster = c[:1000].sum() / 100
    per_single = c[1000:].mean()
    assert abs(per_cluster / per_single - 1) < 0.05, (per_cluster, per_single)
    assert manifest(tmp_path / "o")["resample"]["weights"]["power"] == 1.0


def test_softdedup_commonness_segments_and_floor(ds, tmp_path):
    ok(ds, tmp_path / "o", "--weights", "softdedup", "--rows", "40000", "--segments", "10", "--keep-work", "--seed", "2")
    m = manifest(tmp_path / "o")["resample"]["weights"]
    assert m["mode"] == "softdedup" and m["power"] == 1.0 and m["segments"] == 10
    table = m["segment_table"]
    assert len(table) == 10 and sum(s["docs"] for s in table) == 4000
    means = [s["mean_commonness"] for s in table]
    assert means == sorted(means)
    assert all(s["tokens_in"] > 0 and s["tokens_drawn"] > 0 for s in table)
    # the weight of a segment is 1 / its mean, capped at the floor quantile's weight
    for s in table:
        assert s["weight"] == pytest.approx(min(s["mean_commonness"] ** -1.0, m["cap"]))
    rows = read_rows(tmp_path / "o")
    c = np.array([r["sample_count"] for r in rows])
    x = np.array([r["commonness"] for r in rows])
    lo, hi = c[x < 0.2].mean(), c[x > 0.7].mean()
    assert lo > 3 * hi  # rare documents drawn far more often than common ones


def test_softdedup_weight_is_strictly_decreasing_above_the_floor():
    rng = np.random.default_rng(0)
    v = rng.uniform(0.01, 1.0, 5000)
    spec = wt.WeightSpec("commonness", segments=20, power=1.5, floor_quantile=0.05)
    summ = [__import__("curate.filter.quantiles", fromlist=["summarize"]).summarize(v)]
    model = wt.segment_model(summ, None, None, spec)
    s = wt.segment_of(v, model)
    model = wt.segment_model(summ, np.bincount(s, minlength=20), np.bincount(s, v, 20), spec)
    grid = np.linspace(model["floor_value"] * 1.3, 1.0, 500)
    w = wt.softdedup_weight(grid, model)
    assert (np.diff(w) < 0).all()
    assert wt.softdedup_weight(np.array([0.001]), model)[0] == pytest.approx(model["cap"])


def test_empty_documents_weigh_nothing(tmp_path):
    n = 400
    com = np.where(np.arange(n) < 10, np.nan, 0.5)
    toks = np.where(np.arange(n) < 10, 0, 10)
    d = make_dataset(tmp_path / "in", n=n, shards=2, commonness=pa.array(com, from_pandas=True), n_tokens=toks)
    ok(d, tmp_path / "o", "--weights", "softdedup", "--rows", "500")
    c = counts_of(tmp_path / "o")
    assert c[:10].sum() == 0 and c.sum() == 500


# ---- mixtures, budgets, epochs -------------------------------------------------------------------


def test_mixture_files_toml_and_doremi_json(tmp_path):
    (tmp_path / "m.toml").write_text("a = 1\nb = 3\n")
    (tmp_path / "m.json").write_text(json.dumps({"train_domain_weights": {"a": 0.5, "b": 0.5}}))
    assert pl.load_mixture(str(tmp_path / "m.toml")) == {"a": 0.25, "b": 0.75}
    assert pl.load_mixture(str(tmp_path / "m.json")) == {"a": 0.5, "b": 0.5}


def test_temperature_maths():
    q = pl.temperature_mixture({"a": 100.0, "b": 900.0}, 2.0)
    assert q["a"] == pytest.approx(0.25) and q["b"] == pytest.approx(0.75)
    assert pl.temperature_mixture({"a": 100.0, "b": 900.0}, 1.0)["a"] == pytest.approx(0.1)
    assert pl.temperature_mixture({"a": 100.0, "b": 900.0}, 1e9)["a"] == pytest.approx(0.5)


def test_realised_mixture_matches_the_requested_one(ds, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"train_domain_weights": {"a": 0.6, "b": 0.4}}))
    ok(ds, tmp_path / "o", "--by", "domain", "--mixture", tmp_path / "m.json", "--tokens", "100000",
       "--weights", "column:w")
    doms = manifest(tmp_path / "o")["resample"]["domains"]
    assert doms["a"]["realised_share"] == pytest.approx(0.6, abs=0.005)
    assert doms["b"]["requested_share"] == 0.4
    assert doms["a"]["epochs"] == pytest.approx(0.6 * 100000 / 10000)
    rows = read_rows(tmp_path / "o")
    toks = {d: sum(r["sample_count"] * r["n_tokens"] for r in rows if r["domain"] == d) for d in "ab"}
    assert toks["a"] == doms["a"]["tokens_drawn"]


def test_temperature_flattens_the_domains(ds, tmp_path):
    ok(ds, tmp_path / "o", "--by", "domain", "--temperature", "1000", "--rows", "20000", "--seed", "4")
    doms = manifest(tmp_path / "o")["resample"]["domains"]
    # domain sizes 1:3, T -> inf: equal shares (rows budget: shares of draws)
    assert doms["a"]["requested_share"] == pytest.approx(0.5, abs=1e-3)
    assert doms["a"]["realised_share"] == pytest.approx(0.5, abs=2e-3)


def test_token_and_fraction_budgets(ds, tmp_path):
    ok(ds, tmp_path / "t", "--tokens", "25000")
    assert counts_of(tmp_path / "t").sum() == 2500  # every document has 10 tokens
    ok(ds, tmp_path / "f", "--fraction", "0.5", "--no-replacement")
    c = counts_of(tmp_path / "f")
    assert c.sum() == 2000 and c.max() == 1


def test_epochs_warn_above_max_and_refuse_above_hard_max(ds, tmp_path):
    r = run("resample", ds, tmp_path / "w", "--fraction", "5")
    assert r.exit_code == 0 and "more than --max-epochs 4" in r.stderr
    r = run("resample", ds, tmp_path / "h", "--fraction", "20")
    assert r.exit_code == 1 and "more than --hard-max-epochs 16" in r.stderr
    assert not list((tmp_path / "h").glob("part-*"))
    r = run("resample", ds, tmp_path / "h2", "--fraction", "20", "--hard-max-epochs", "32")
    assert r.exit_code == 0


def test_without_replacement_refuses_more_than_one_epoch(ds, tmp_path):
    r = run("resample", ds, tmp_path / "o", "--rows", "5000", "--no-replacement")
    assert r.exit_code == 1 and "without replacement" in r.stderr
    assert not list((tmp_path / "o").glob("part-*"))


# ---- methods -------------------------------------------------------------------------------------


def test_gumbel_top_k_inclusion_follows_weights(ds, tmp_path):
    ok(ds, tmp_path / "o", "--weights", "column:w", "--rows", "400", "--no-replacement", "--seed", "9")
    c = counts_of(tmp_path / "o")
    assert c.max() == 1 and c.sum() == 400
    # 10% sample: inclusion ~ proportional to w at this rate: 300 heavy vs 100 light expected
    assert 260 < c[1::2].sum() < 340


def test_softcap_zero_is_multinomial_and_large_lambda_caps_repeats():
    rng = np.random.default_rng(0)
    lw = np.log(np.array([1.0, 2.0, 4.0, 8.0] * 50))
    tot = np.zeros(200)
    for s in range(40):
        c = sm.draw("softcap", lw, 300, np.random.default_rng(s), 0.0)
        assert c.sum() == 300
        tot += c
    per = tot.reshape(50, 4).mean(0)
    assert np.allclose(per / per[0], [1, 2, 4, 8], rtol=0.12), per
    c = sm.draw("softcap", lw, 200, rng, 50.0)
    assert c.sum() == 200 and c.max() == 1  # a second pick costs e^-50: never while others are fresh
    c = sm.draw("softcap", lw, 400, rng, 50.0)
    assert c.min() == 2 and c.max() == 2
    m = sm.draw("multinomial", lw, 400, rng)
    assert m.max() > 2


def test_softcap_through_the_cli_limits_repetition(ds, tmp_path):
    ok(ds, tmp_path / "m", "--weights", "column:w", "--rows", "8000", "--seed", "1")
    ok(ds, tmp_path / "s", "--weights", "column:w", "--rows", "8000", "--soft-cap", "2", "--seed", "1")
    m, s = counts_of(tmp_path / "m"), counts_of(tmp_path / "s")
    assert s.sum() == m.sum() == 8000
    assert s.max() < m.max() and (s == 0).sum() < (m == 0).sum()
    assert manifest(tmp_path / "s")["resample"]["method"] == "softcap"


def test_softcap_is_the_first_n_rings_of_the_whole_domain(tmp_path):
    """The stage's counts equal the first n rings over all (document, j) of each domain, computed here
    directly: every ring a document could have among the first n, all sorted in one list."""
    from curate.resample import rings as rg

    ds = make_dataset(tmp_path / "in", n=900, shards=3, seed=4)
    args = ["--weights", "column:w", "--by", "domain", "--rows", "1500", "--soft-cap", "0.7", "--seed", "5"]
    ok(ds, tmp_path / "o", *args, "-j", "2")
    doms = manifest(tmp_path / "o")["resample"]["domains"]
    want: dict[str, int] = {}
    for j, d in enumerate(["a", "b"]):
        n, ringlist = doms[d]["draws"], []
        for s, f in enumerate(sorted(ds.glob("part-*.parquet"))):
            t = pq.read_table(f).to_pydict()
            rows = np.flatnonzero(np.array(t["domain"]) == d)
            w = np.exp(np.log(np.array(t["w"])[rows]) - np.log(3.0))
            key, last = rg.stream_key(5, s, j), np.zeros(len(rows))
            for r in range(n):  # no document rings more than n times among the first n
                with np.errstate(over="ignore"):
                    last = last + rg.exponentials(key, rows, r) * rg.step_scale(0.7, r) / w
                if not np.isfinite(last).any():
                    break  # the rest never come
                ringlist += [(x, s, int(row), r, t["id"][row]) for x, row in zip(last, rows, strict=True)]
        for *_, i in sorted(ringlist)[:n]:
            want[i] = want.get(i, 0) + 1
    got = {r["id"]: r["sample_count"] for r in read_rows(tmp_path / "o") if r["sample_count"]}
    assert got == want and sum(got.values()) == 1500 and max(got.values()) > 1
    out = tmp_path / "sl"
    for _ in range(20):
        for i in range(3):
            run("resample", ds, out, *args, "--task", f"{i}/3", "-q")
        if (out / "_SUCCESS").exists():
            break
    assert shard_bytes(out) == shard_bytes(tmp_path / "o")
    ok(ds, tmp_path / "j1", *args, "-j", "1")
    assert shard_bytes(tmp_path / "j1") == shard_bytes(tmp_path / "o")


def test_largest_remainder():
    assert sm.largest_remainder(np.array([1.0, 1.0, 1.0]), 10).tolist() == [4, 3, 3]
    assert sm.largest_remainder(np.array([1.0, 1.0]), 10, np.array([2, 100])).tolist() == [2, 8]


# ---- outputs -------------------------------------------------------------------------------------


def test_materialize_repeats_rows_with_epoch_and_rejects_the_rest(ds, tmp_path):
    ok(ds, tmp_path / "c", "--rows", "6000", "--seed", "7")
    ok(ds, tmp_path / "m", "--rows", "6000", "--seed", "7", "--materialize", "--rejects", tmp_path / "rej")
    counts = {r["id"]: r["sample_count"] for r in read_rows(tmp_path / "c")}
    rows = read_rows(tmp_path / "m")
    assert len(rows) == 6000
    got: dict[str, list] = {}
    for r in rows:
        got.setdefault(r["id"], []).append((r["repeat_index"], r["epoch"]))
    assert {k: len(v) for k, v in got.items()} == {k: v for k, v in counts.items() if v}
    assert all(v == [(i, i + 1) for i in range(len(v))] for v in got.values())
    rej = read_rows(tmp_path / "rej")
    assert {r["id"] for r in rej} == {k for k, v in counts.items() if v == 0}
    assert all(r["reject_reason"] == "not_sampled" for r in rej)
    t = manifest(tmp_path / "m")["totals"]
    assert t["rows_in"] == 4000 == t["rows_out"] + t["rows_rejected"]
    assert t["rows_out"] == len(got)


# ---- determinism and resume ----------------------------------------------------------------------


def test_same_output_for_any_workers_and_task_slices(ds, tmp_path):
    args = ["--weights", "softdedup", "--by", "domain", "--temperature", "2", "--tokens", "30000", "--seed", "11"]
    ok(ds, tmp_path / "j1", *args, "-j", "1")
    ok(ds, tmp_path / "j2", *args, "-j", "2")
    ref = shard_bytes(tmp_path / "j1")
    assert shard_bytes(tmp_path / "j2") == ref
    sel = (tmp_path / "j1" / "_selection.parquet").read_bytes()
    assert (tmp_path / "j2" / "_selection.parquet").read_bytes() == sel
    out = tmp_path / "sl"
    for _ in range(8):  # slices go round until one completes the dataset
        for i in range(3):
            run("resample", ds, out, *args, "--task", f"{i}/3", "-q")
        if (out / "_SUCCESS").exists():
            break
    assert shard_bytes(out) == ref and (out / "_selection.parquet").read_bytes() == sel
    ok(ds, tmp_path / "other", *args[:-1], "12")
    assert shard_bytes(tmp_path / "other") != ref


def test_kill9_then_resume_gives_identical_output(sample_dataset, tmp_path):
    args = ["--rows", "3000", "--materialize", "-j", "1"]
    ref = tmp_path / "ref"
    ok(sample_dataset, ref, *args)
    many = tmp_path / "many"  # more shards: a run long enough to be killed in the middle
    assert run("export", sample_dataset, many, "--format", "parquet", "--shard-size", "24", "-q").exit_code == 0
    ok(many, ref2 := tmp_path / "ref2", *args)
    out = tmp_path / "out"
    _kill9_after(out, 120, "resample", many, out, *args, "-q")
    r = curate_proc("resample", many, out, *args)
    assert r.returncode == 0, r.stderr.decode()
    assert "resuming" in r.stderr.decode()
    assert shard_bytes(out) == shard_bytes(ref2)
    assert sum(1 for _ in read_rows(ref)) == 3000


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("weights,override,message", [
    ("column:nope", {}, "no 'nope' column"),
    ("softdedup", {"commonness": None}, "no 'commonness' column"),
    ("column:w", {"w": np.zeros(400)}, "every weight"),
    ("column:w", {"w": np.where(np.arange(400) == 7, -1.0, 1.0)}, "negative weight; the first is row 7"),
    ("column:w", {"w": np.where(np.arange(400) == 250, np.nan, 1.0)}, "null or NaN weight; the first is row 50"),
    ("softdedup:dup_count", {"dup_count": np.zeros(400, np.int64)}, "dup_count below 1"),
    ("expr:len(text) > 3", {}, "a weight must be a number"),
])
def test_bad_weights_are_clear_errors_before_any_output(tmp_path, weights, override, message):
    drop = [k for k, v in override.items() if v is None]
    d = make_dataset(tmp_path / "in", n=400, shards=2, **{k: v for k, v in override.items() if v is not None})
    for k in drop:
        for f in d.glob("*.parquet"):
            pq.write_table(pq.read_table(f).drop_columns([k]), f)
    r = run("resample", d, tmp_path / "o", "--weights", weights, "--rows", "100")
    assert r.exit_code in (1, 2), r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "o").glob("part-*")) if (tmp_path / "o").exists() else True


@pytest.mark.parametrize("mixture,message", [
    ({"a": 1, "b": 1, "c": 1}, "does not have: c"),
    ({"a": 1}, "no weight for domain(s): b"),
])
def test_bad_mixtures_are_clear_errors(ds, tmp_path, mixture, message):
    (tmp_path / "m.toml").write_text("\n".join(f"{k} = {v}" for k, v in mixture.items()))
    r = run("resample", ds, tmp_path / "o", "--by", "domain", "--mixture", tmp_path / "m.toml", "--rows", "100")
    assert r.exit_code == 1 and message in r.stderr, r.stderr
    assert not list((tmp_path / "o").glob("part-*"))


def test_usage_errors(ds, tmp_path):
    assert run("resample", ds, tmp_path / "o").exit_code == 2  # no budget
    assert run("resample", ds, tmp_path / "o", "--rows", "1", "--tokens", "1").exit_code == 2
    assert run("resample", ds, tmp_path / "o", "--rows", "1", "--temperature", "2").exit_code == 2  # no --by
    assert run("resample", ds, tmp_path / "o", "--rows", "1", "--soft-cap", "1", "--no-replacement").exit_code == 2
    r = run("resample", ds, tmp_path / "o", "--rows", "1", "--weights", "bogus")
    assert r.exit_code == 2 and "expected one of" in r.stderr
    r = run("resample", ds, tmp_path / "o", "--rows", "1", "--by", "nope")
    assert r.exit_code == 1 and "--by nope" in r.stderr


def test_zero_share_domain_and_all_zero_domain(ds, tmp_path):
    (tmp_path / "m.toml").write_text("a = 0\nb = 1\n")
    ok(ds, tmp_path / "o", "--by", "domain", "--mixture", tmp_path / "m.toml", "--rows", "500")
    rows = read_rows(tmp_path / "o")
    assert sum(r["sample_count"] for r in rows if r["domain"] == "a") == 0
    n = 400
    w = np.where(np.arange(n) % 4 == 0, 0.0, 1.0)  # domain a: all zero
    d = make_dataset(tmp_path / "z", n=n, shards=2, w=w)
    r = run("resample", d, tmp_path / "o2", "--by", "domain", "--weights", "column:w", "--rows", "100")
    assert r.exit_code == 1 and "every weight in domain 'a' is zero" in r.stderr
    assert math.isfinite(manifest(tmp_path / "o")["resample"]["budget"])


def test_gumbel_top_k_is_global_and_exact(ds, tmp_path):
    """The stage's selection equals the top N of log w + Gumbel over the whole corpus, computed here
    directly with the same per-(shard, domain) generators."""
    ok(ds, tmp_path / "o", "--weights", "column:w", "--by", "domain", "--rows", "700", "--no-replacement",
       "--seed", "13", "-j", "2")
    alloc_draws = manifest(tmp_path / "o")["resample"]["domains"]
    keys, chosen = {"a": [], "b": []}, set()
    files = sorted(ds.glob("part-*.parquet"))
    names = ["a", "b"]
    for s, f in enumerate(files):
        t = pq.read_table(f).to_pydict()
        w, dom, ids = np.array(t["w"]), np.array(t["domain"]), t["id"]
        for j, d in enumerate(names):
            rows = np.flatnonzero(dom == d)
            g = sm.rng_for(13, s, j, "gumbel").gumbel(size=len(rows))
            keys[d] += [(np.log(w[r]) - np.log(3.0) + x, ids[r]) for r, x in zip(rows, g, strict=True)]
    for d in names:
        n = alloc_draws[d]["draws"]
        chosen |= {i for _, i in sorted(keys[d], reverse=True)[:n]}
    got = {r["id"] for r in read_rows(tmp_path / "o") if r["sample_count"]}
    assert got == chosen and len(got) == 700
    out = tmp_path / "sl"
    for _ in range(12):
        for i in range(2):
            run("resample", ds, out, "--weights", "column:w", "--by", "domain", "--rows", "700", "--no-replacement",
                "--seed", "13", "--task", f"{i}/2", "-q")
        if (out / "_SUCCESS").exists():
            break
    assert shard_bytes(out) == shard_bytes(tmp_path / "o")


def test_topk_cut_pieces():
    from curate.resample import topk

    x = np.array([-2.5, -0.0, 0.0, 1e-300, 3.0, -1e300, 7.25])
    u = topk.sortable(x)
    assert (np.argsort(u, kind="stable") == np.argsort(x, kind="stable")).all()
    assert topk.cut([[[5, 2], [9, 1]], [[5, 4], [1, 10]]], 3) == (5, 1)
    assert topk.threshold([[7, 0, 3], [7, 1, 0], [9, 2, 2]], 2) == [7, 0, 3]
    sel = topk.selected(np.array([7, 7, 8, 6], np.uint64), 0, np.array([2, 4, 0, 1]), [7, 0, 3])
    assert sel.tolist() == [True, False, True, False]


# ---- option values at and past their limits ------------------------------------------------------


def test_any_positive_temperature_works_and_tends_to_the_largest_domain(ds, tmp_path):
    # n^(1/T) of a billion tokens overflows a float below T ~ 0.03: the shares come from log space
    q = pl.temperature_mixture({"a": 1e9, "b": 2e9, "c": 0.0}, 0.003)
    assert q["b"] == pytest.approx(1.0) and q["a"] == pytest.approx(0.5 ** (1 / 0.003)) and q["c"] == 0.0
    assert pl.temperature_mixture({"a": 1e9, "b": 2e9}, 1e-320) == {"a": 0.0, "b": 1.0}
    assert pl.temperature_mixture({"a": 7.0, "b": 7.0, "c": 1.0}, 1e-300) == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert pl.temperature_mixture({"a": 1.0, "b": 3.0}, math.inf) == {"a": 0.5, "b": 0.5}
    ok(ds, tmp_path / "o", "--by", "domain", "--temperature", "0.003", "--tokens", "20000")
    doms = manifest(tmp_path / "o")["resample"]["domains"]
    assert doms["b"]["requested_share"] == 1.0 and doms["a"]["draws"] == 0 and doms["b"]["draws"] == 2000
    r = run("resample", ds, tmp_path / "n", "--by", "domain", "--temperature", "nan", "--rows", "10")
    assert r.exit_code == 2 and "'--temperature': nan is not in the range x>0" in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["--rows", "10", "--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
    (["--rows", "10", "--soft-cap", "nan"], "'--soft-cap': nan is not in the range x>=0"),
    (["--rows", "10", "--soft-cap", "inf"], "use --no-replacement"),
    (["--tokens", "nan"], "'--tokens': nan is not in the range 0<x<inf"),
    (["--fraction", "nan"], "'--fraction': nan is not in the range 0<x<inf"),
    (["--fraction", "inf", "--hard-max-epochs", "inf"], "'--fraction': inf is not in the range 0<x<inf"),
    (["--rows", "100000", "--hard-max-epochs", "nan"], "'--hard-max-epochs': nan is not in the range x>0"),
    (["--rows", "10", "--max-epochs", "nan"], "'--max-epochs': nan is not in the range x>0"),
    (["--rows", "10", "--floor-quantile", "nan"], "'--floor-quantile': nan is not in the range 0<=x<1"),
    (["--rows", "10", "--weights", "softdedup", "--segments", "100000000"], "'--segments': 100000000 is not in the range 1<=x<=2048"),
    (["--rows", str(10**19), "--hard-max-epochs", "inf"], "is not in the range 1<=x<=1000000000000"),
])
def test_option_values_out_of_range_are_usage_errors(ds, tmp_path, args, message):
    r = curate_proc("resample", ds, tmp_path / "o", *args, "-q", timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and message in err, err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_option_limits_match_the_library():
    from curate import cli_resample
    from curate.filter import quantiles as qt

    assert cli_resample.MAX_DRAWS == pl.MAX_DRAWS
    assert cli_resample.MAX_SEGMENTS == wt.SEGMENTS_MAX == qt.K


def test_any_non_negative_seed_works(ds, tmp_path):
    ok(ds, tmp_path / "o", "--rows", "100", "--seed", str(2**100))
    assert manifest(tmp_path / "o")["resample"]["seed"] == 2**100


@pytest.mark.parametrize("args,message", [
    (["--fraction", "1e20"], "--fraction 1e+20 needs 4e+20 draws, more than the 1e+12"),
    (["--tokens", "1e300"], "--tokens 1e+300 needs 1e+299 draws, more than the 1e+12"),
    (["--fraction", "1e308"], "--fraction 1e+308 needs inf draws"),  # the budget itself is past float range
    (["--tokens", "1e13"], "draws some documents of the input about 2.5e+11 times"),
])
def test_budgets_past_the_draw_limits_are_usage_errors(tmp_path, args, message):
    # 4 documents of 10 tokens: 1e13 tokens would draw each 2.5e11 times (sample_count is int32)
    d = make_dataset(tmp_path / "in", n=4, shards=1)
    r = curate_proc("resample", d, tmp_path / "o", *args, "--hard-max-epochs", "inf", "-q", timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and message in err, err
    assert not list((tmp_path / "o").glob("part-*")) if (tmp_path / "o").exists() else True


def test_counts_past_int32_are_refused_and_below_it_are_exact(tmp_path):
    d = make_dataset(tmp_path / "in", n=2, shards=1)
    ok(d, tmp_path / "o", "--rows", "3000000000", "--hard-max-epochs", "inf", "--max-epochs", "inf")
    c = counts_of(tmp_path / "o")
    sel = pq.read_table(tmp_path / "o" / "_selection.parquet").column("count").to_pylist()
    assert c.sum() == 3_000_000_000 and c.tolist() == sel and c.min() > 0
    r = run("resample", d, tmp_path / "x", "--rows", "5000000000", "--hard-max-epochs", "inf")
    assert r.exit_code == 2 and "--rows 5000000000 draws some documents" in r.stderr, r.stderr
    assert "2,147,483,647" in r.stderr and not (tmp_path / "x" / "part-00000.parquet").exists()
    code = ("import numpy as np; from curate.resample import sampling as sm\n"
            "try: sm.largest_remainder(np.array([1.0, 1.0]), 2**63)\nexcept ValueError: print('refused')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)  # it looped forever
    assert p.stdout.decode().strip() == "refused"


def test_softdedup_power_past_float_range_is_a_usage_error(ds, tmp_path):
    r = run("resample", ds, tmp_path / "o", "--weights", "softdedup", "--power", "1e6", "--rows", "10")
    assert r.exit_code == 2 and "--power 1e+06: the softdedup weight" in r.stderr, r.stderr
    assert "--power can be at most" in r.stderr and not list((tmp_path / "o").glob("part-*"))
    ok(ds, tmp_path / "ok", "--weights", "softdedup", "--power", "200", "--rows", "10")  # steep, but in range


def test_softcap_rings_past_float_range_are_an_input_error(tmp_path):
    from curate.resample import rings as rg

    assert rg.step_scale(math.inf, 0) == 1.0 and rg.step_scale(1000.0, 1) == math.inf
    w, rows = np.ones(3), np.arange(3)
    assert rg.nth_time(w, rows, 7, 1000.0, 4) == math.inf  # a second ring never comes
    assert math.isfinite(rg.nth_time(w, rows, 7, 1000.0, 3))
    d = make_dataset(tmp_path / "in", n=40, shards=2)
    r = run("resample", d, tmp_path / "o", "--rows", "100", "--soft-cap", "1000")
    assert r.exit_code == 1 and "--soft-cap 1000: a document would need a waiting time" in r.stderr, r.stderr


def test_bad_weight_messages_show_plain_numbers(tmp_path):
    d = make_dataset(tmp_path / "in", n=400, shards=2, w=np.where(np.arange(400) == 7, -1.5, 1.0),
                     dup_count=np.where(np.arange(400) == 3, 0, 1))
    r = run("resample", d, tmp_path / "o", "--weights", "column:w", "--rows", "10")
    assert r.exit_code == 1 and "the first is row 7 (-1.5)" in r.stderr, r.stderr
    r = run("resample", d, tmp_path / "o2", "--weights", "softdedup:dup_count", "--rows", "10")
    assert r.exit_code == 1 and "the first is row 3 (0)" in r.stderr and "np." not in r.stderr, r.stderr
    assert wt._plain(np.float64(2.0**60)) == "1.152921504606847e+18" and wt._plain(np.float64("inf")) == "inf"


def test_quantile_in_a_weight_expression_is_a_clear_error(ds, tmp_path):
    r = run("resample", ds, tmp_path / "o", "--weights", "expr:w > quantile(w,0.5)", "--rows", "10")
    assert r.exit_code == 2 and "--weights expr: quantile()" in r.stderr, r.stderr
    assert "expr::" not in r.stderr and "nested" not in r.stderr
    r = run("resample", ds, tmp_path / "o", "--weights", "expr:w +", "--rows", "10")
    assert r.exit_code == 2 and r.stderr.count("--weights expr: ") == 1, r.stderr


def test_segment_boundaries_equal_the_merged_quantiles():
    from curate.filter import quantiles as qt

    rng = np.random.default_rng(3)
    summ = [qt.summarize(rng.uniform(0, 1, n)) for n in (5000, 17, 2048, 3)] + [qt.summarize(np.empty(0))]
    qs = [j / 2048 for j in range(1, 2048)] + [0.0, 1.0, 0.3]
    assert wt._quantiles(summ, qs) == [qt.merge(summ, q) for q in qs]
    assert wt._quantiles([qt.summarize(np.empty(0))], [0.5]) == [None]
