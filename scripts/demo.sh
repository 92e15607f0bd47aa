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

say "dedup exact: identical documents (after whitespace normalisation), rejects keep every removed row"
curate dedup exact "$OUT/raw" "$OUT/exact" --rejects "$OUT/exact_rejects" --overwrite

say "dedup minhash: near duplicates (word 5-grams, Jaccard >= 0.8, each candidate pair checked)"
curate dedup minhash "$OUT/exact" "$OUT/near" --rejects "$OUT/near_rejects" --overwrite

say "what dedup removed: a few near duplicates and the documents kept in their place"
curate head "$OUT/near_rejects" -n 3 --columns id,dup_of,reject_reason --width 70
echo "the sample corpus has $(grep -c '"exact"' data/sample/truth.jsonl) injected exact and $(grep -c '"near"' data/sample/truth.jsonl) near copies" >&2

say "ngram train: a 4-gram KenLM model of the raw sample itself (SoftDedup), streamed into lmplz"
curate ngram train "$OUT/raw" "$OUT/models/sample.4gram.bin" --order 4 --memory 1G --overwrite

say "score: CCNet perplexity (ppl) and SoftDedup commonness in one pass over the data"
curate score "$OUT/raw" "$OUT/scored" --kenlm "$OUT/models/sample.4gram.bin" --commonness "$OUT/models/sample.4gram.bin" --overwrite
curate head "$OUT/scored" -n 5 --columns id,n_tokens,ppl,commonness --width 100

say "filter: the rules of a preset; the dry-run table first (nothing written), then the run with rejects"
curate filter "$OUT/scored" --preset configs/example.toml --dry-run --group-by domain
curate filter "$OUT/scored" "$OUT/filtered" --preset configs/example.toml --rejects "$OUT/filter_rejects" --overwrite
curate head "$OUT/filter_rejects" -n 3 --columns id,n_tokens,ppl,reject_rule,reject_rules --width 60

say "the lineage of the final dataset"
curate info "$OUT/near"

say "done: outputs under $OUT"
