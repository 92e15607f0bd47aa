"""fastText classifiers as score columns: a tiny model is trained on the test data, so the real
fastText code runs, and curate's columns are checked against the fasttext API itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curate.score import fasttext_scorer as fts
from tests.conftest import read_rows, run

fasttext = pytest.importorskip("fasttext")

FIX = Path(__file__).parent / "fixtures" / "dsir"
RAW = FIX / "raw.jsonl"


def records() -> list[dict]:
    return [json.loads(line) for line in RAW.open()]


def train(path: Path, label_of, **kw) -> Path:
    """A supervised model over the fixture's documents (one line each, as fastText trains)."""
    lines = [f"__label__{label_of(r)} " + r["text"].replace("\n", " ") for r in records() if r["text"].strip()]
    data = path.with_suffix(".txt")
    data.write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(str(data), thread=1, verbose=0, epoch=30, lr=0.5, dim=16, bucket=20000, **kw)
    model.save_model(str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ft")
    return {"domain": train(d / "domain.bin", lambda r: r["domain"]),
            "long": train(d / "long.v1.bin", lambda r: "long" if len(r["text"]) > 400 else "short", wordNgrams=2)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ftds") / "in"
    r = run("ingest", RAW, out, "--id-field", "id", "--shard-size", "60", "-q")
    assert r.exit_code == 0, r.output
    return out


def api(model: Path, texts: list[str]) -> tuple[list[str], list[float]]:
    """What the fasttext API predicts for each document, prepared as DCLM/datatrove do (newlines -> spaces)."""
    m = fasttext.load_model(str(model))
    labels, probs = m.predict([t.replace("\n", " ") for t in texts], k=1)
    return [x[0].removeprefix("__label__") for x in labels], [float(p[0]) for p in probs]


def test_columns_equal_the_fasttext_api(models, dataset, tmp_path):
    out = tmp_path / "out"
    r = run("score", dataset, out, "--fasttext", models["domain"], "--fasttext-name", "domain",
            "--fasttext", models["long"], "-q")
    assert r.exit_code == 0, r.output
    rows = read_rows(out)
    texts = [x["text"] for x in rows]
    for name, model in (("domain", models["domain"]), ("long_v1", models["long"])):
        labels, probs = api(model, texts)
        assert [x[f"{name}_label"] for x in rows] == labels
        assert [x[f"{name}_score"] for x in rows] == probs  # the same float32 values, exactly
    assert {x["domain_label"] for x in rows} >= {"class", "function", "module"}
    agree = np.mean([x["domain_label"] == x["domain"] for x in rows])
    assert agree > 0.6  # the model learned something: the real training and prediction path ran
    m = json.loads((out / "_manifest.json").read_text())
    assert [s["name"] for s in m["params"]["scorers"]] == ["domain", "long_v1"]


def test_scorer_on_edge_documents(models):
    s = fts.FastTextScorer("d", str(models["domain"]))
    s.prepare()
    docs = ["Return the value.\nRaises KeyError.", "", "   ", None, "x" * 100000, "日本語 テキスト", "a\rb\tc"]
    got = s.score(pa.array(docs, pa.string()))
    labels, probs = api(models["domain"], [d for d in docs if d is not None])
    want_l = labels[:3] + [None] + labels[3:]
    want_p = probs[:3] + [None] + probs[3:]
    assert got["d_label"].to_pylist() == want_l
    assert got["d_score"].to_pylist() == want_p
    # a newline is a space: fastText would otherwise stop reading at it
    one = s.score(pa.array(["Return the value. Raises KeyError."]))
    assert one["d_score"][0].as_py() == got["d_score"][0].as_py()


def test_parallel_output_is_identical(models, dataset, tmp_path):
    for j in ("1", "2"):
        assert run("score", dataset, tmp_path / j, "--fasttext", models["domain"], "-j", j, "-q").exit_code == 0
    for f in sorted((tmp_path / "1").glob("part-*.parquet")):
        assert f.read_bytes() == (tmp_path / "2" / f.name).read_bytes()


def test_names():
    assert fts.default_name("models/lid.176.bin") == "lid_176"
    assert fts.default_name("2024-edu.ftz") == "ft_2024_edu"
    assert fts.pair_names(("a.bin", "b.bin"), ("x",)) == [("x", "a.bin"), ("b", "b.bin")]


def test_bad_models_and_options(models, dataset, tmp_path):
    r = run("score", dataset, tmp_path / "o1", "--fasttext", tmp_path / "missing.bin")
    assert r.exit_code == 1 and "fastText model not found" in r.output
    (tmp_path / "text.bin").write_text("this is not a model\n")
    r = run("score", dataset, tmp_path / "o2", "--fasttext", tmp_path / "text.bin")
    assert r.exit_code == 1 and "not a fastText binary model" in r.output
    data = models["domain"].read_bytes()
    for cut in (12, 100, 400, len(data) // 2, len(data) - 4):
        (tmp_path / "cut.bin").write_bytes(data[:cut])
        r = run("score", dataset, tmp_path / f"o3-{cut}", "--fasttext", tmp_path / "cut.bin")
        assert r.exit_code == 1 and "truncated or corrupt" in r.output, (cut, r.output)
    r = run("score", dataset, tmp_path / "o4", "--fasttext", models["domain"], "--fasttext", models["domain"])
    assert r.exit_code == 2 and "would both write domain_label" in r.output
    r = run("score", dataset, tmp_path / "o5", "--fasttext", models["domain"], "--fasttext-name", "a",
            "--fasttext-name", "b")
    assert r.exit_code == 2 and "2 --fasttext-name for 1" in r.output
    r = run("score", dataset, tmp_path / "o6", "--fasttext", models["domain"], "--fasttext-name", "bad-name")
    assert r.exit_code == 2 and "not a plain column prefix" in r.output


def test_word_vector_model_is_refused(tmp_path):
    data = tmp_path / "w.txt"
    data.write_text(" ".join(r["text"] for r in records())[:20000])
    m = fasttext.train_unsupervised(str(data), model="skipgram", dim=8, epoch=1, minCount=1, thread=1, verbose=0)
    m.save_model(str(tmp_path / "w.bin"))
    with pytest.raises(Exception) as e:
        fts.load_model(str(tmp_path / "w.bin"))
    assert "not a classifier" in str(e.value)
