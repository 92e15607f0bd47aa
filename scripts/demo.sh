#!/usr/bin/env bash
# `make demo`: the main job on the sample corpus, end to end, with every stage that exists so far.
set -euo pipefail
OUT=${OUT:-out/demo}
RAW=${RAW:-data/sample/raw}
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "ingest: $RAW (JSON Lines, gzip and plain) -> $OUT/raw (sharded Parquet)"
curate ingest "$RAW" "$OUT/raw" --id-field doc_id --shard-size 500 --overwrite --rejects "$OUT/raw_rejects"

say "info: schema, rows, shards and lineage"
curate info "$OUT/raw"

say "head: the first documents"
curate head "$OUT/raw" -n 3 --width 120

say "pipe: ingest to stdout, export from stdin (Arrow IPC between the two)"
curate ingest "$RAW/docs-04.jsonl" - --id-field doc_id -q | curate export - - --format jsonl --columns id,domain | head -n 3

say "export: JSON Lines, zstd-compressed, re-sharded to 1,000 documents per file"
curate export "$OUT/raw" "$OUT/export" --format jsonl.zst --shard-size 1000 --overwrite --json > "$OUT/export.summary.json"
ls -l "$OUT/export" >&2
cat "$OUT/export.summary.json" >&2
echo >&2

say "done: outputs under $OUT"
