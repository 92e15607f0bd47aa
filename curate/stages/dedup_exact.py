"""curate dedup exact: documents whose normalised text is identical (128-bit MurmurHash3).

Phases: signature (per shard: hash every document, partition the hashes by their top bits) ->
group (per partition: sort, find groups, pick the kept document) -> apply (per shard).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from curate.run.executor import Task, TaskContext
from curate.stages.dedup_common import (
    GlobalDedup,
    decisions_from_groups,
    gids,
    part_of,
    priority,
    reduce_groups,
    spill_dir,
    write_decisions,
    write_partitioned,
)
from curate.text.arrow import hash128, normalize, normalize_hash128


@dataclass(frozen=True)
class ExactParams:
    normalize: str = "whitespace"  # none | whitespace | simple
    mode: str = "drop"  # drop | annotate
    keep: str = "first"


class DedupExact(GlobalDedup):
    name = "dedup_exact"
    reason = "exact_duplicate"
    bytes_per_row = 64

    def run_signature(self, task: Task, ctx: TaskContext) -> None:
        shard = self.shard_index(task)
        tables = []
        for row, b in self.read_shard(task, self.columns_needed()):
            tables.append(self.hash_batch(shard, row, b))
            ctx.result.rows_in += b.num_rows
            ctx.progress(b.num_rows, 0)
        t = pa.concat_tables(tables) if tables else None
        loc = self.work(ctx, f"hash/{shard:06d}.arrow")
        if t is None:
            t = pa.table({"h1": pa.array([], pa.uint64()), "h2": pa.array([], pa.uint64()), "gid": pa.array([], pa.uint64()),
                          "prio": pa.array([], pa.float64()), "id": pa.array([], pa.string())})
        write_partitioned(loc, t, part_of(t.column("h1").to_numpy(), self.parts))

    def hash_batch(self, shard: int, row: int, b: pa.RecordBatch) -> pa.Table:
        text = b.column("text")
        # A text that normalises to nothing (all punctuation, say) is compared as it is, in
        # another seed's space: "!!!" duplicates "!!!" but not "???".
        if self.params.normalize == "none":
            norm = normalize(text, "none")  # the text, a null as ""
            h = hash128(norm)
            empty = pc.equal(pc.binary_length(norm), 0).to_numpy(zero_copy_only=False)
            if empty.any():
                h[empty] = hash128(text, seed=1)[empty]
        else:  # the same, in one pass
            h = normalize_hash128(text, self.params.normalize, seed=0, raw_seed=1)
        return pa.table({
            "h1": pa.array(h[:, 0]), "h2": pa.array(h[:, 1]),
            "gid": pa.array(gids(shard, row, b.num_rows)),
            "prio": pa.array(priority(b, self.keep)),
            "id": b.column("id"),
        })

    def run_group(self, task: Task, ctx: TaskContext) -> None:
        p = task.spec
        sources = [(self.work(ctx, f"hash/{i:06d}.arrow"), p) for i in range(len(self.dataset.shards))]
        found: list[pa.Table] = []

        def emit(t, rep_t, rep_idx, size):
            d = decisions_from_groups(t, rep_t, rep_idx, size)
            if d is not None:
                found.append(d)

        reduce_groups(sources, ["h1", "h2", "gid", "prio", "id"], ["h1", "h2"], ["prio", "gid"],
                      self.memory_per_task, spill_dir(ctx.out, "group", task.name), emit,
                      used_bits=int(self.parts).bit_length() - 1, counters=ctx.result.counters)
        write_decisions(self.work(ctx, f"decide/p{p:05d}.arrow"), found)
        ctx.result.count("duplicated_documents", int(sum(len(x) for x in found)))
