#!/usr/bin/env bash
# The dedup benchmark of BENCHMARKS.md ("Dedup"): builds the corpora (cached under
# scripts/bench/data/), the exact Jaccard ground truth (cached beside each corpus), then times
# curate against datasketch, rensa and datatrove; tables on stdout, raw JSON and the tables in
# scripts/bench/results/dedup-*.{json,md}. About 40 minutes on 2 cores from nothing: ~3 min to
# generate the 1 GB corpus, ~4 min of exact joins, ~11 min for sample + 100MB, ~18 min for 1GB.
# Extra arguments go to bench_dedup.py, e.g. `bash scripts/bench/run_dedup.sh --corpora sample:3`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
PEERS=scripts/bench/.venv-peers/bin/python
if ! "$PEERS" -c "import datasketch, rensa, datatrove, xxhash" 2>/dev/null; then
    bash scripts/bench/setup_peers.sh
fi
# datatrove's default word tokenizer for English is spaCy's ('en', blank): not in setup_peers.sh
"$PEERS" -c "import spacy" 2>/dev/null || "$PEERS" -m pip install -q spacy
for size in sample 100MB 1GB; do
    "$PY" scripts/bench/make_dup_corpus.py --size "$size" >/dev/null
done
# the peers' pure-Python shingles must be curate's, document for document
"$PY" scripts/bench/dedup_shingles.py --check scripts/bench/data/dup-sample/parquet
"$PY" scripts/bench/dedup_shingles.py --check scripts/bench/data/dup-100MB-s0/parquet --limit 5000
exec "$PY" scripts/bench/bench_dedup.py --corpora sample:3,100MB:3,1GB:1 --spacy-corpora sample \
    --skip "1GB=datatrove -t1" "$@"
