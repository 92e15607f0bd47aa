#!/bin/bash
# Run one curate stage on Slurm: N array slices per phase, then a dependent finalize job.
#
#   scripts/slurm/submit.sh [-n N] [-p P] [-- SBATCH_OPTS...] : CURATE ARGS...
#   scripts/slurm/submit.sh -n 64 : score crawl/ scored/ --kenlm en.bin
#   scripts/slurm/submit.sh -n 64 -p 3 -- --partition=cpu : dedup minhash raw/ dedup/ --rejects dups/
#
# -n N  slices per array (default 32); -p P  arrays chained with afterok (default 1). Array k runs
# each slice's share of phase k; P=1 runs the per-shard first phase on the array and leaves the
# rest to the finalize job. Phases per stage: export and plain scoring 1, filter with quantile() 2,
# resample 3 to 7, dedup exact and paragraphs 3 (signature, group, apply), dedup minhash 6
# (signature, edges, fetch, verify, components, apply; 4 with --no-verify). A run lists its
# phases as the keys of "tasks" in OUT/_work/plan.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=32 p=1 sbatch_opts=()
while [ $# -gt 0 ] && [ "$1" != ":" ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -p) p=$2; shift 2 ;;
    --) shift; while [ $# -gt 0 ] && [ "$1" != ":" ]; do sbatch_opts+=("$1"); shift; done ;;
    *) echo "usage: $0 [-n N] [-p P] [-- SBATCH_OPTS...] : CURATE ARGS..." >&2; exit 2 ;;
  esac
done
[ "${1:-}" = ":" ] || { echo "usage: $0 [-n N] [-p P] [-- SBATCH_OPTS...] : CURATE ARGS..." >&2; exit 2; }
shift
dep=()
for _ in $(seq 1 "$p"); do
  job=$(sbatch --parsable "${sbatch_opts[@]}" "${dep[@]}" --array="0-$((n - 1))" "$here/array.sbatch" "$@")
  echo "array job $job ($n slices)" >&2
  dep=(--dependency="afterok:${job%%;*}")
done
job=$(sbatch --parsable "${sbatch_opts[@]}" "${dep[@]}" "$here/finalize.sbatch" "$@")
echo "finalize job $job (after the arrays succeed)" >&2
echo "$job"
