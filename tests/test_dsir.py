"""DSIR importance weights: the C features against data-selection's own code, the fit phase and
the estimator file, and the dsir_logratio column against data-selection's importance weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curate.score import dsir
from tests.conftest import read_rows, run

FIX = Path(__file__).parent / "fixtures" / "dsir"
RAW, TARGET = FIX / "raw.jsonl", FIX / "target.jsonl"

ds_ngram = pytest.importorskip("data_selection.hashed_ngram_dsir")


def texts() -> list[str]:
    return [json.loads(line)["text"] for line in RAW.open()]


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.fixture(scope="module")
def raw_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dsir") / "raw"
    r = run("ingest", RAW, out, "--id-field", "id", "--shard-size", "40", "-q")
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """data-selection's log importance weights for raw.jsonl toward target.jsonl (10000 buckets)."""
    from data_selection import HashedNgramDSIR

    cache = tmp_path_factory.mktemp("ds-cache")
    d = HashedNgramDSIR([str(RAW)], [str(TARGET)], cache_dir=str(cache), num_proc=1, num_buckets=10000)
    d.fit_importance_estimator(num_tokens_to_fit="all")
    d.compute_importance_weights()
    return {"weights": np.load(cache / "log_importance_weights" / "0.npy"), "dsir": d}


# ---- features ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ngrams,buckets", [(2, 10000), (1, 97), (3, 1 << 20)])
def test_features_equal_data_selection(ngrams, buckets):
    docs = texts()
    ours = dsir.bucket_counts(pa.array(docs), buckets, ngrams)
    ref = np.zeros(buckets, np.int64)
    for t in docs:
        ds_ngram.get_ngram_counts(t, n=ngrams, num_buckets=buckets, counts=ref)
    assert ours.sum() > 10000
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("text", ["", "   \n", "word", "...!!!", "ΟΔΟΣ ΣΑΣ. Σ", "İstanbul'da İYİ", "e\u0301te\u0301",
                                  "日本語のテキスト、テスト！", "a\u00a0b\u2003c\x1cd\x1fe\u200bf", "ǅungla ß ẞ ﬁ Ω K",
                                  "emoji 🙂🙂 ok 👍🏽", "x" * 100 + " y", "tab\tsep\rCR\r\nCRLF"])
def test_one_document(text):
    ours = dsir.bucket_counts(pa.array([text]), 10000, 2)
    assert np.array_equal(ours, ds_ngram.get_ngram_counts(text, n=2, num_buckets=10000))


def test_bucket_is_sha256_mod():
    from curate import _dsir

    for s in ["", "a", "hello world", "ünï", "x" * 200]:
        assert _dsir.bucket(s.encode(), 10000) == ds_ngram.hash_buckets(s, 10000)


def test_log_ratios_are_dot_products():
    docs = texts()[:50] + [None]
    w = np.random.default_rng(0).normal(size=500)
    got = dsir.log_ratios(pa.array(docs, pa.string()), w, 2)
    assert got.null_count == 1 and not got[len(docs) - 1].is_valid
    want = [float(np.dot(w, ds_ngram.get_ngram_counts(t, n=2, num_buckets=500))) for t in docs[:-1]]
    np.testing.assert_allclose(got.to_numpy(zero_copy_only=False)[:-1], want, rtol=1e-12, atol=1e-9)


# ---- the stage --------------------------------------------------------------------------------


def test_logratio_matches_data_selection(raw_ds, reference, tmp_path):
    out = tmp_path / "out"
    r = run("score", raw_ds, out, "--dsir-target", TARGET, "--dsir-save", tmp_path / "e.dsir", "-q")
    assert r.exit_code == 0, r.output
    rows = read_rows(out)
    ids = [json.loads(line)["id"] for line in RAW.open()]
    assert len(rows) >= len(ids) - 2  # ingest sets aside documents without text
    ours = np.array([x["dsir_logratio"] for x in rows])
    ref = reference["weights"][[ids.index(x["id"]) for x in rows]]
    assert spearman(ours, ref) >= 0.99
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-7)  # the same numbers, up to summation order
    est, _ = dsir.load_estimator(str(tmp_path / "e.dsir"))
    p = reference["dsir"]
    np.testing.assert_array_equal(est.raw / est.raw.sum(), p.raw_probs)
    np.testing.assert_array_equal(est.target / est.target.sum(), p.target_probs)
    np.testing.assert_array_equal(est.log_diff(), p.log_diff)


def test_save_load_and_splits_give_the_same_bytes(raw_ds, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run("score", raw_ds, a, "--dsir-target", TARGET, "--dsir-buckets", "512", "--dsir-save", tmp_path / "a.dsir",
               "-j", "1", "-q").exit_code == 0
    for i in (0, 1):  # two --task slices, each runs its share of both phases; then any slice finishes
        assert run("score", raw_ds, b, "--dsir-target", TARGET, "--dsir-buckets", "512", "--dsir-save",
                   tmp_path / "b.dsir", "--task", f"{i}/2", "-q").exit_code == 0
    r = run("score", raw_ds, b, "--dsir-target", TARGET, "--dsir-buckets", "512", "--dsir-save", tmp_path / "b.dsir",
            "-j", "2", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.dsir").read_bytes() == (tmp_path / "b.dsir").read_bytes()
    assert run("score", raw_ds, c, "--dsir-load", tmp_path / "a.dsir", "-q").exit_code == 0
    for name in sorted(p.name for p in a.glob("part-*.parquet")):
        assert (a / name).read_bytes() == (b / name).read_bytes() == (c / name).read_bytes()
    m = json.loads((a / "_manifest.json").read_text())
    assert m["dsir"]["buckets"] == 512 and m["phases"]["fit"]["tasks"] == 5 + 1
    assert not (a / "_work").exists()


def test_estimator_file_holds_what_it_was_fitted_with(raw_ds, tmp_path):
    assert run("score", raw_ds, tmp_path / "o", "--dsir-target", TARGET, "--dsir-buckets", "64",
               "--dsir-save", tmp_path / "e.dsir", "-q").exit_code == 0
    est, sha = dsir.load_estimator(str(tmp_path / "e.dsir"))
    assert est.buckets == 64 and est.ngrams == 2 and len(sha) == 64
    assert est.meta["target_corpus"]["uri"] == str(TARGET)
    assert est.meta["raw_corpus"]["identity"].startswith("sha256:")
    assert est.meta["features_identity"] == dsir.features_identity()
    assert est.raw.sum() == dsir.bucket_counts(pa.array(texts()), 64).sum()


def test_parquet_target_equals_jsonl_target(raw_ds, tmp_path):
    tgt = tmp_path / "tgt"
    assert run("ingest", TARGET, tgt, "-q").exit_code == 0
    for name, t in (("j", TARGET), ("p", tgt)):
        assert run("score", raw_ds, tmp_path / name, "--dsir-target", t, "--dsir-buckets", "128", "-q").exit_code == 0
    assert [r["dsir_logratio"] for r in read_rows(tmp_path / "j")] == [r["dsir_logratio"] for r in read_rows(tmp_path / "p")]


# ---- bad input ----------------------------------------------------------------------------------


def test_bad_inputs(raw_ds, tmp_path):
    r = run("score", raw_ds, tmp_path / "o1", "--dsir-load", tmp_path / "missing.dsir")
    assert r.exit_code == 1 and "DSIR estimator not found" in r.output
    (tmp_path / "junk.dsir").write_bytes(b"not an estimator")
    r = run("score", raw_ds, tmp_path / "o2", "--dsir-load", tmp_path / "junk.dsir")
    assert r.exit_code == 1 and "not a curate DSIR estimator" in r.output
    assert run("score", raw_ds, tmp_path / "o3", "--dsir-target", TARGET, "--dsir-buckets", "32",
               "--dsir-save", tmp_path / "e.dsir", "-q").exit_code == 0
    (tmp_path / "cut.dsir").write_bytes((tmp_path / "e.dsir").read_bytes()[:-8])
    r = run("score", raw_ds, tmp_path / "o4", "--dsir-load", tmp_path / "cut.dsir")
    assert r.exit_code == 1 and "truncated or corrupt" in r.output
    r = run("score", raw_ds, tmp_path / "o5", "--dsir-load", tmp_path / "e.dsir", "--dsir-buckets", "64")
    assert r.exit_code == 2 and "has 32 buckets" in r.output
    r = run("score", raw_ds, tmp_path / "o6", "--dsir-load", tmp_path / "e.dsir", "--dsir-target", TARGET)
    assert r.exit_code == 2 and "exclude each other" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 3}\n')
    r = run("score", raw_ds, tmp_path / "o7", "--dsir-target", bad)
    assert r.exit_code == 1 and "line 2" in r.output
    r = run("score", raw_ds, tmp_path / "o8", "--dsir-target", TARGET, "--dsir-target-field", "body")
    assert r.exit_code == 1 and "no tokens in field 'body'" in r.output
    r = run("score", raw_ds, tmp_path / "o9", "--dsir-save", tmp_path / "x.dsir")
    assert r.exit_code == 2 and "need --dsir-target" in r.output
    r = run("score", raw_ds, tmp_path / "o10", "--dsir-target", TARGET, "--dsir-buckets", "0")
    assert r.exit_code == 2 and "--dsir-buckets must be" in r.output


def test_stdin_needs_a_loaded_estimator(raw_ds, tmp_path):
    r = run("score", "-", tmp_path / "o", "--dsir-target", TARGET)
    assert r.exit_code == 2 and "not '-'" in r.output


def test_kill9_in_the_fit_phase_then_resume(sample_dataset, tmp_path):
    from tests.test_resume import _kill9_after

    args = ["--dsir-target", TARGET, "--dsir-buckets", "4096", "-j", "1", "-q"]
    assert run("score", sample_dataset, tmp_path / "ref", *args, "--dsir-save", tmp_path / "ref.dsir").exit_code == 0
    out = tmp_path / "out"
    _kill9_after(out, 3, "score", sample_dataset, out, *args, "--dsir-save", tmp_path / "out.dsir")
    assert not (tmp_path / "out.dsir").exists()
    r = run("score", sample_dataset, out, *args, "--dsir-save", tmp_path / "out.dsir")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ref.dsir").read_bytes() == (tmp_path / "out.dsir").read_bytes()
    for f in sorted((tmp_path / "ref").glob("part-*.parquet")):
        assert f.read_bytes() == (out / f.name).read_bytes()
