#!/usr/bin/env bash
# `make bench`: build the benchmark corpora (cached under scripts/bench/data/) and run the
# foundation I/O benchmarks; tables on stdout, raw JSON in scripts/bench/results/.
# Extra arguments go to bench_io.py, e.g. `bash scripts/bench/run_all.sh --reps 5`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
for size in 200MB 2GB; do
    "$PY" scripts/bench/make_corpus.py --size "$size" >/dev/null
done
exec "$PY" scripts/bench/bench_io.py --size 200MB --reps 3 --scaling-size 2GB --scaling-reps 2 \
    --rss-sizes 200MB,2GB --rss-reps 2 "$@"
