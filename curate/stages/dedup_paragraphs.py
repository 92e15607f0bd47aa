"""curate dedup paragraphs: CCNet-style removal of lines (or blank-line separated paragraphs)
that occur elsewhere in the corpus, keeping the first occurrence.

Phases: signature (per shard: hash every normalised unit) -> group (per partition: every unit
but the first of its group is to be removed) -> apply (per shard: rebuild the texts; documents
left empty or under --min-chars are rejected).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.run.executor import Task, TaskContext, TaskResult
from curate.stages.base import mark_rejected
from curate.stages.dedup_common import (
    GlobalDedup,
    gids,
    part_of,
    priority,
    read_label,
    reduce_groups,
    row_of,
    shard_of,
    spill_dir,
    write_partitioned,
)
from curate.text.arrow import as_string_array, hash128, normalize

UNIT_BITS = 28  # units per document < 2^28; rows per shard < 2^36
REMOVAL_SCHEMA = pa.schema([("gid", pa.uint64()), ("unit", pa.int64())])


@dataclass(frozen=True)
class ParagraphParams:
    unit: str = "line"  # line | paragraph
    normalize: str = "simple"
    min_chars: int = 0
    mode: str = "drop"
    keep: str = "first"


def split_units(text: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(units, parent row of each unit, index of each unit within its document)."""
    text = as_string_array(text)
    if unit == "line":
        lists = pc.split_pattern(text, "\n")
    else:
        lists = pc.split_pattern_regex(text, r"\n[ \t\r]*\n")
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists).to_numpy()
    offsets = lists.offsets.to_numpy()[: len(lists)]
    index = np.arange(len(parent), dtype=np.int64) - offsets[parent] if len(parent) else np.empty(0, np.int64)
    return flat, parent, index


class DedupParagraphs(GlobalDedup):
    name = "dedup_paragraphs"
    reason = "paragraph_duplicate"
    annotate_columns = ("dup_units", "dup_chars")
    needs_id = False  # units are found by (gid, unit), and a reject names no other document
    bytes_per_row = 48

    def rows_per_doc(self) -> int:
        return 20  # lines per document, for sizing partitions

    @property
    def separator(self) -> str:
        return "\n" if self.params.unit == "line" else "\n\n"

    def run_signature(self, task: Task, ctx: TaskContext) -> None:
        shard = self.shard_index(task)
        tables = []
        for row, b in self.read_shard(task, self.columns_needed()):
            units, parent, index = split_units(b.column("text"), self.params.unit)
            norm = normalize(units, self.params.normalize)
            # blank units never count, whatever the normalisation ('none' keeps a line of spaces as it is)
            keep = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(norm)), 0).to_numpy(zero_copy_only=False)
            h = hash128(norm)[keep]
            prio = priority(b, self.keep)[parent[keep]]
            tables.append(pa.table({
                "h1": pa.array(h[:, 0]), "h2": pa.array(h[:, 1]),
                "gid": pa.array(gids(shard, row, b.num_rows)[parent[keep]]),
                "unit": pa.array(index[keep]),
                "prio": pa.array(prio),
            }))
            ctx.progress(b.num_rows, 0)
        loc = self.work(ctx, f"hash/{shard:06d}.arrow")
        t = pa.concat_tables(tables) if tables else pa.table(
            {"h1": pa.array([], pa.uint64()), "h2": pa.array([], pa.uint64()), "gid": pa.array([], pa.uint64()),
             "unit": pa.array([], pa.int64()), "prio": pa.array([], pa.float64())})
        write_partitioned(loc, t, part_of(t.column("h1").to_numpy(), self.parts))

    def run_group(self, task: Task, ctx: TaskContext) -> None:
        p = task.spec
        sources = [(self.work(ctx, f"hash/{i:06d}.arrow"), p) for i in range(len(self.dataset.shards))]
        found: list[pa.Table] = []

        def emit(t, rep_t, rep_idx, size):
            rep_gid = rep_t.column("gid").to_numpy()[rep_idx]
            rep_unit = rep_t.column("unit").to_numpy()[rep_idx]
            g, u = t.column("gid").to_numpy(), t.column("unit").to_numpy()
            drop = (size > 1) & ~((g == rep_gid) & (u == rep_unit))
            if drop.any():
                found.append(pa.table({"gid": pa.array(g[drop]), "unit": pa.array(u[drop])}))

        reduce_groups(sources, ["h1", "h2", "gid", "unit", "prio"], ["h1", "h2"], ["prio", "gid", "unit"],
                      self.memory_per_task, spill_dir(ctx.out, "group", task.name), emit,
                      used_bits=int(self.parts).bit_length() - 1, counters=ctx.result.counters)
        t = pa.concat_tables(found).combine_chunks() if found else REMOVAL_SCHEMA.empty_table()
        loc = self.work(ctx, f"decide/p{p:05d}.arrow")
        write_partitioned(loc, t, shard_of(t.column("gid").to_numpy()) if t.num_rows else np.empty(0, np.int64))
        ctx.result.count("duplicate_units", t.num_rows)

    # -- apply -----------------------------------------------------------------------------
    def begin_task(self, task: Task, ctx: TaskContext) -> None:
        self._shard, self._row = task.spec, 0
        keys = []
        for p in range(self.parts):
            t = read_label(self.work(ctx, f"decide/p{p:05d}.arrow"), task.spec)
            if t is not None:
                keys.append(_unit_keys(row_of(t.column("gid").to_numpy()), t.column("unit").to_numpy()))
        self._removed = np.sort(np.concatenate(keys)) if keys else np.empty(0, np.uint64)

    def transform(self, batch: pa.RecordBatch, result: TaskResult):
        n = batch.num_rows
        if not hasattr(self, "_removed"):  # schema probe for an empty shard
            self._removed, self._row = np.empty(0, np.uint64), 0
        units, parent, index = split_units(batch.column("text"), self.params.unit)
        rows = np.arange(self._row, self._row + n, dtype=np.int64)
        self._row += n
        keys = _unit_keys(rows[parent], index) if len(parent) else np.empty(0, np.uint64)
        pos = np.searchsorted(self._removed, keys)
        hit = (pos < len(self._removed)) & (self._removed[np.minimum(pos, max(len(self._removed) - 1, 0))] == keys) if len(self._removed) else np.zeros(len(keys), bool)
        lengths = pc.utf8_length(units).to_numpy(zero_copy_only=False) if len(units) else np.empty(0, np.int64)
        dup_units = np.bincount(parent[hit], minlength=n) if len(parent) else np.zeros(n, np.int64)
        dup_chars = np.bincount(parent[hit], weights=lengths[hit], minlength=n).astype(np.int64) if len(parent) else np.zeros(n, np.int64)
        if self.params.mode == "annotate":
            result.count("duplicate_units", int(dup_units.sum()))
            out = batch.append_column("dup_units", pa.array(dup_units, pa.int64()))
            return out.append_column("dup_chars", pa.array(dup_chars, pa.int64())), None
        touched = dup_units > 0
        text = batch.column("text")
        if touched.any():
            keep = ~hit
            counts = np.bincount(parent[keep], minlength=n)
            offs = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
            lists = pa.ListArray.from_arrays(pa.array(offs), units.filter(pa.array(keep)))
            # the separator must have the units' type (large_string text gives large_string units)
            rebuilt = pc.binary_join(lists, pa.scalar(self.separator, units.type))
            text = pc.if_else(pa.array(touched), pc.cast(rebuilt, text.type), text)
        result.count("units_removed", int(dup_units.sum()))
        result.count("chars_removed", int(dup_chars.sum()))
        new = batch.set_column(batch.schema.get_field_index("text"), "text", text)
        left = pc.utf8_length(pc.utf8_trim_whitespace(text)).to_numpy(zero_copy_only=False)
        short = touched & (left < max(1, self.params.min_chars))
        kept = new.filter(pa.array(~short))
        rej = batch.filter(pa.array(short))  # rejects keep the document as it came in
        rej = mark_rejected(rej, self.reason)
        result.count(self.reason, rej.num_rows)
        return kept, rej

    def end_task(self, task: Task, ctx: TaskContext) -> None:
        pass

    def finalize(self, out, results) -> dict:
        return {"partitions": self.parts}


def _unit_keys(rows: np.ndarray, units: np.ndarray) -> np.ndarray:
    return (rows.astype(np.uint64) << np.uint64(UNIT_BITS)) | units.astype(np.uint64)
