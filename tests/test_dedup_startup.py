"""What keeps a small `curate dedup` run short: the band search and the arrays helpers agree with
the slow, obvious versions, and the MinHash path does not import pyarrow.compute or numpy.ma."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.io import arrays


def _full_search(threshold, num_perm, fp_weight, fn_weight):
    """optimal_bands as it was: the trapezoid over 201 points for every (bands, rows)."""
    lo = np.linspace(0.0, threshold, 201)
    hi = np.linspace(threshold, 1.0, 201)
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], np.float64)
    b, r = pairs[:, :1], pairs[:, 1:]
    fp = np.trapezoid(1 - (1 - lo**r) ** b, lo, axis=1)
    fn = np.trapezoid((1 - hi**r) ** b, hi, axis=1)
    best = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return int(pairs[best, 0]), int(pairs[best, 1])


@pytest.mark.parametrize("num_perm", [16, 32, 64, 100, 128, 200, 256])
def test_optimal_bands_equal_the_full_search(num_perm):
    from curate.stages.dedup_minhash import optimal_bands

    for threshold in np.round(np.arange(0.05, 1.0001, 0.05), 2):
        for weights in ((0.5, 0.5), (0.05, 0.95)):
            got = optimal_bands.__wrapped__(float(threshold), num_perm, *weights)
            assert got == _full_search(float(threshold), num_perm, *weights), (threshold, num_perm, weights)


def test_optimal_bands_fine_thresholds_at_the_default_permutations():
    from curate.stages.dedup_minhash import optimal_bands

    for threshold in np.round(np.arange(0.5, 0.96, 0.01), 2):
        for weights in ((0.5, 0.5), (0.05, 0.95)):
            assert optimal_bands.__wrapped__(float(threshold), 128, *weights) == _full_search(float(threshold), 128, *weights)


def test_arrays_helpers_equal_pyarrow_and_numpy():
    rng = np.random.default_rng(1)
    for dtype in (np.uint64, np.int64, np.float64, np.int32):
        a = rng.integers(0, 50, 1000).astype(dtype)
        assert arrays.from_numpy(a).equals(pa.array(a))
        assert arrays.from_numpy(a[::3]).equals(pa.array(a[::3]))  # strided: copied
        assert np.array_equal(arrays.unique(a), np.unique(a))
    mask = rng.random(1000) < 0.3
    assert arrays.from_numpy(mask).equals(pa.array(mask))
    assert arrays.from_numpy(np.zeros(0, bool)).equals(pa.array(np.zeros(0, bool)))
    x, y = rng.integers(0, 5, 300).astype(np.uint64), rng.integers(0, 5, 300).astype(np.uint64)
    assert np.array_equal(arrays.unique_pairs(x, y), np.unique(np.stack([x, y], 1), axis=0))
    assert arrays.unique_pairs(x[:0], y[:0]).shape == (0, 2)
    strings = pa.array([f"s{i}" if i % 7 else None for i in range(1000)])
    batch = pa.record_batch({"s": strings, "n": pa.array(np.arange(1000))})
    assert arrays.filter(batch, mask).equals(batch.filter(pa.array(mask)))
    idx = rng.integers(0, 1000, 200)
    assert arrays.take(strings, idx).equals(strings.take(pa.array(idx)))
    assert arrays.take(pa.table(batch), idx).equals(pa.table(batch).take(pa.array(idx)))
    which = np.where(rng.random(200) < 0.5, idx, -1)
    want = pa.array([strings[int(i)].as_py() if i >= 0 else None for i in which], pa.string())
    assert arrays.take_or_null(strings, which).equals(want)
    assert pc.sum(arrays.from_numpy(np.ones(5, np.int64))).as_py() == 5


def test_take_and_filter_equal_arrow_kernels():
    # Numeric and string/binary columns without nulls are taken in numpy and C (no
    # libarrow_compute); the rest go to Arrow's kernels. Either way: Arrow's answer.
    rng = np.random.default_rng(2)
    words = ["", "a", "h\u00e9llo", "x" * 300, "\u65e5\u672c"]
    strs = pa.array([words[i % 5] + str(i) for i in range(50)])
    chunked = pa.chunked_array([strs.slice(0, 10), strs.slice(10)])
    cases = [strs, strs.slice(7, 30), pa.array([w.encode() for w in words] * 3, pa.binary()),
             pa.array(words * 4, pa.large_string()), pa.array(words * 4, pa.large_binary()),
             pa.array(np.arange(40, dtype=np.uint64)), pa.array(np.arange(40, dtype=np.int32)).slice(5),
             pa.array(rng.random(33)), pa.array([], pa.string()), pa.array(["a", None, "b"]),
             pa.array([True, False, True]), pa.array([[1, 2], [], [3]], pa.large_list(pa.uint64())), chunked,
             pa.table({"s": chunked, "n": pa.chunked_array([pa.array(np.arange(10)), pa.array(np.arange(40))])}),
             pa.record_batch({"s": strs, "n": pa.array(np.arange(50)), "x": pa.array([None] * 50, pa.string())}),
             pa.record_batch({"s": strs, "n": pa.array(np.arange(50))})]
    for values in cases:
        n = len(values)
        for m in (0, 1, 7, 100):
            idx = rng.integers(0, n, m) if n else np.zeros(0, np.int64)
            assert arrays.take(values, idx).equals(pc.take(values, pa.array(idx, pa.int64()))), values
            mask = rng.random(n) < 0.5
            assert arrays.filter(values, mask).equals(pc.filter(values, pa.array(mask))), values
    with pytest.raises(IndexError):
        arrays.take(strs, np.array([50]))
    with pytest.raises(IndexError):
        arrays.take(strs, np.array([-1]))


def test_pcg_equals_numpy_default_rng():
    from curate.stages.dedup_minhash import SEED, permutations
    from curate.text.pcg import PCG64

    for seed in (SEED, 0, 1, 2**32, 2**40 + 7, 2**130 + 3):
        for n in (1, 7, 100, 128, 1024):
            rng, mine = np.random.default_rng(seed), PCG64(seed)
            for low in (1, 0, 5):
                assert mine.integers(low, 2**63, n) == rng.integers(low, 2**63, n, dtype=np.uint64).tolist(), (seed, n, low)
    for n in (1, 64, 128, 256, 1024):
        rng = np.random.default_rng(SEED)
        a = rng.integers(1, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        b = rng.integers(0, 2**63, n, dtype=np.uint64)
        got = permutations.__wrapped__(n)
        assert np.array_equal(got[0], a) and np.array_equal(got[1], b)
        assert got[0].dtype == np.uint64 and got[1].dtype == np.uint64


def test_minhash_run_imports_no_pyarrow_compute_numpy_ma_or_numpy_random(sample_dataset, tmp_path):
    code = (  # main() ends in os._exit, after the atexit handlers
        "import atexit, sys\nfrom curate.cli import main\n"
        "atexit.register(lambda: print('imported:', *(m for m in ('pyarrow.compute', 'numpy.ma', 'numpy.random', 'pyarrow._compute') if m in sys.modules)))\n"
        "main()\n"
    )
    for k, extra in enumerate(([], ["--mode", "annotate"], ["--rejects", str(tmp_path / "rej")])):
        out = tmp_path / f"o{k}"
        argv = ["curate", "dedup", "minhash", str(sample_dataset), str(out), "-j", "1", "-q", *extra]
        r = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {argv!r}\n" + code],
                           capture_output=True, text=True, check=True)
        # annotate's dup_cluster is a take with nulls: Arrow's kernel (pyarrow._compute, not pyarrow.compute)
        assert r.stdout.strip() == ("imported: pyarrow._compute" if "annotate" in extra else "imported:"), (extra, r.stdout, r.stderr)


@pytest.mark.parametrize("kind, opts", [("minhash", []), ("minhash", ["--mode", "annotate"]), ("exact", []),
                                        ("paragraphs", [])])
def test_small_input_decoded_once_same_output(sample_dataset, tmp_path, monkeypatch, kind, opts):
    # Below pool_min_bytes a run stays in one process and decodes each input shard once for all
    # its phases; the output (and the rejects) must be the bytes of a run that reads every time.
    import curate.stages.dedup_common as dc
    from tests.conftest import run

    def outputs(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}

    reads: list[str] = []
    real = dc.iter_batches

    def counting(loc, *a, **k):
        reads.append(loc.path)
        return real(loc, *a, **k)

    monkeypatch.setattr(dc, "iter_batches", counting)
    runs = {}
    for name, threshold in (("every_time", "0"), ("once", str(16 << 20))):
        monkeypatch.setenv("CURATE_POOL_MIN_BYTES", threshold)
        reads.clear()
        out, rej = tmp_path / name, tmp_path / f"{name}_rejects"
        r = run("dedup", kind, sample_dataset, out, "-j", "1", "-q", "--rejects", rej, *opts)
        assert r.exit_code == 0, r.output
        runs[name] = outputs(out), outputs(rej) if rej.exists() else {}, len(reads), len(set(reads))
    shards = len(list(Path(sample_dataset).glob("*.parquet")))
    assert runs["once"][:2] == runs["every_time"][:2]
    assert runs["once"][2] == runs["once"][3] == shards  # one decode per shard
    assert runs["every_time"][2] >= (2 if kind == "minhash" else 1) * shards  # signature (and fetch) read again
