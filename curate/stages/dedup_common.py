"""What exact, paragraph and MinHash dedup share: document numbers, keep policies, partitioned
work files, grouping by key in bounded memory (spilling when a partition is too big), and the
apply phase that drops or annotates rows.

A document is numbered gid = shard_index << 32 | row: unique, dense per shard, and independent
of the worker count. Every "who is kept" decision is a minimum over (priority, gid), so ties
break the same way in every run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.errors import InputError, UsageError
from curate.io.arrays import cast, filter, from_numpy, take, take_or_null, unique
from curate.io.atomic import commit, needs_rename, tmp_sibling
from curate.io.location import Location

GID_SHIFT = 32
PLAN_BUDGET = 256 << 20  # key bytes a partition is planned to hold
PARTS_KEY = b"curate.parts"  # file metadata: {"<part>": <row group>} of a partitioned work file
WORK_ROW_GROUP = 1 << 20


# ---- document numbers --------------------------------------------------------------------


def gids(shard: int, start: int, n: int) -> np.ndarray:
    return (np.uint64(shard) << np.uint64(GID_SHIFT)) + np.arange(start, start + n, dtype=np.uint64)


def shard_of(gid: np.ndarray) -> np.ndarray:
    return (gid >> np.uint64(GID_SHIFT)).astype(np.int64)


def row_of(gid: np.ndarray) -> np.ndarray:
    return (gid & np.uint64(0xFFFFFFFF)).astype(np.int64)


# ---- keep policies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    kind: str  # first | longest | max | min
    column: str | None = None

    @property
    def columns(self) -> list[str]:
        return ["text"] if self.kind == "longest" else ([self.column] if self.column else [])


def parse_keep(value: str) -> Keep:
    if value in ("first", "longest"):
        return Keep(value)
    if value.startswith(("max:", "min:")) and len(value) > 4:
        return Keep(value[:3], value[4:])
    raise UsageError(f"--keep {value!r}: expected first, longest, max:COLUMN or min:COLUMN")


def priority(batch: pa.RecordBatch, keep: Keep) -> np.ndarray:
    """Smaller is kept first; ties go to the smaller gid (the earlier document)."""
    n = batch.num_rows
    if keep.kind == "first":
        return np.zeros(n, np.float64)
    import pyarrow.compute as pc  # only these policies need it; see curate.io.arrays

    if keep.kind == "longest":
        return -pc.utf8_length(batch.column("text")).to_numpy(zero_copy_only=False).astype(np.float64)
    col = pc.cast(batch.column(keep.column), pa.float64())
    vals = col.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> nan
    vals = -vals if keep.kind == "max" else vals
    return np.where(np.isnan(vals), np.inf, vals)  # a null never wins


def check_keep_column(schema: pa.Schema, keep: Keep, where: str) -> None:
    if keep.column is None:
        return
    if keep.column not in schema.names:
        raise InputError(f"--keep {keep.kind}:{keep.column}: no such column; the columns are: {', '.join(schema.names)}", where=where)
    t = schema.field(keep.column).type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise InputError(f"--keep {keep.kind}:{keep.column}: the column is {t}, not a number", where=where,
                         hint="keep by a numeric column (a score, a length, a timestamp as int64)")


def check_new_columns(schema: pa.Schema, names: tuple[str, ...], where: str) -> None:
    """A column this stage adds must not be there already: the output would hold two of one name
    (say, dup_cluster after an earlier dedup --mode annotate)."""
    clash = [n for n in names if n in schema.names]
    if clash:
        raise InputError(f"the input already has a {clash[0]} column (from an earlier dedup --mode annotate?)", where=where,
                         hint="annotate the input of that earlier run instead, or use --mode drop here")


# ---- sizes and partitions ------------------------------------------------------------------


def parse_memory(value: str | None) -> int:
    """'4G', '512M', '2GiB' -> bytes; None -> half of the machine's memory."""
    if value is None:
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.5)
        except (ValueError, OSError, AttributeError):
            return 4 << 30
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(value))
    if not m:
        raise UsageError(f"--memory {value!r}: expected a size such as 4G, 512M or 2GiB")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return max(int(float(m.group(1)) * mult), 16 << 10)


def partition_count(rows: int, bytes_per_row: int, budget: int, minimum: int = 4) -> int:
    """Enough partitions that one fits a task's budget with room for sorting (about 3x)."""
    need = max(1, -(-rows * bytes_per_row * 3 // max(budget, 1)))
    p = 1
    while p < max(need, minimum):
        p *= 2
    return min(p, 1 << 14)


def part_of(key: np.ndarray, parts: int) -> np.ndarray:
    """Partition by the top bits of a 64-bit hash: uniform, and sub-partitions use the next bits."""
    bits = int(parts).bit_length() - 1
    if bits == 0:
        return np.zeros(len(key), np.int64)
    return (key >> np.uint64(64 - bits)).astype(np.int64)


# ---- partitioned work files ----------------------------------------------------------------


def _write_table_atomic(loc: Location, tables: list[tuple[int, pa.Table]], schema: pa.Schema) -> None:
    """Write (label, table) pieces as row groups of one Parquet file; metadata maps label -> row
    groups. (resample's selection files; dedup's own work files are Arrow IPC: see write_work.)"""
    import pyarrow.parquet as pq

    target = tmp_sibling(loc) if needs_rename(loc) else loc
    parts: dict[str, list[int]] = {}
    rg = 0
    with loc.fs.open_output_stream(target.path) as sink:
        meta_schema = schema  # metadata goes in after we know the row groups: use the footer
        writer = pq.ParquetWriter(sink, meta_schema, compression="zstd", compression_level=1, use_dictionary=False)
        for label, t in tables:
            if t.num_rows == 0:
                continue
            start = rg
            for off in range(0, t.num_rows, WORK_ROW_GROUP):
                writer.write_table(t.slice(off, WORK_ROW_GROUP), row_group_size=WORK_ROW_GROUP)
                rg += 1
            parts[str(label)] = list(range(start, rg))
        writer.add_key_value_metadata({PARTS_KEY.decode(): json.dumps(parts)})
        writer.close()
    if target is not loc:
        commit(target, loc)


def write_work(loc: Location, tables: list[tuple[int, pa.Table]], schema: pa.Schema,
                        ranges: str | None = None) -> None:
    """Write (label, table) pieces as record batches of one Arrow IPC file; its schema metadata
    maps label -> batches and gives each batch's bytes (and, with `ranges`, the min and max of
    that column). Work files are hashes and numbers read back once: Parquet's encoding and zstd
    cost more than they save, and IPC reads are zero-copy."""
    parts: dict[str, list[int]] = {}
    batches: list[pa.RecordBatch] = []
    for label, t in tables:
        if t.num_rows == 0:
            continue
        t = t.combine_chunks()
        start = len(batches)
        for off in range(0, t.num_rows, WORK_ROW_GROUP):
            batches.extend(t.slice(off, WORK_ROW_GROUP).to_batches())
        parts[str(label)] = list(range(start, len(batches)))
    meta = {"parts": parts, "bytes": [b.nbytes for b in batches]}
    if ranges is not None:
        meta["ranges"] = [_min_max(b.column(ranges)) for b in batches]
    schema = schema.with_metadata({PARTS_KEY: json.dumps(meta)})
    if SmallRun.in_memory():
        SmallRun.files[loc.path] = WorkFile(loc, MemoryBatches(schema, batches))
        return
    target = tmp_sibling(loc) if needs_rename(loc) else loc
    with loc.fs.open_output_stream(target.path) as sink:
        with pa.ipc.new_file(sink, schema) as writer:
            for b in batches:
                writer.write_batch(b)
    if target is not loc:
        commit(target, loc)


class MemoryBatches:
    """A work file that stays in memory: the part of an IPC file reader that WorkFile uses."""

    def __init__(self, schema: pa.Schema, batches: list[pa.RecordBatch]):
        self.schema, self.batches = schema, batches
        self.num_record_batches = len(batches)

    def get_batch(self, i: int) -> pa.RecordBatch:
        return self.batches[i]


def _min_max(col: pa.Array) -> list[int]:
    v = col.to_numpy()
    return [int(v.min()), int(v.max())]


def write_partitioned(loc: Location, table: pa.Table, labels: np.ndarray) -> None:
    """Rows grouped by label (a partition or shard number), one or more batches per label."""
    if table.num_rows == 0:
        write_work(loc, [], table.schema)
        return
    if len(labels) > 1 and (labels[1:] < labels[:-1]).any():
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        table = take(table, order)
    else:  # one label (a small run's single partition) or already in order: no copy
        sorted_labels = labels
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(sorted_labels)]])
    pieces = [(int(sorted_labels[a]), table.slice(a, b - a)) for a, b in zip(starts, ends, strict=True)]
    write_work(loc, pieces, table.schema)


class SmallRun:
    """What a run small enough for one process (see pool_min_bytes, which bounds the memory)
    keeps between its phases, in that process: the decoded input shards (signature, fetch and
    apply each read every shard) and the open work files (read by several tasks; a work file
    is written once, before anything reads it). Cleared when a run plans and when it ends.

    When the executor runs it all in this process (Stage.work_in_memory), the work files are
    never written to disk at all."""

    pid: int | None = None  # the process of the small run under way
    memory = False  # work files only in `files`
    decoded: dict[int, list[pa.RecordBatch]] = {}
    files: dict[str, WorkFile] = {}

    @classmethod
    def start(cls, on: bool) -> None:
        cls.pid = os.getpid() if on else None
        cls.memory = False
        cls.decoded, cls.files = {}, {}

    @classmethod
    def active(cls) -> bool:
        return cls.pid == os.getpid()

    @classmethod
    def in_memory(cls) -> bool:
        return cls.memory and cls.active()


class WorkFile:
    """A work file opened for reading: its batches, and the labels, sizes and ranges written
    with them (a spill file has none: it is read whole)."""

    def __new__(cls, loc: Location, source=None):
        if SmallRun.active() and source is None:
            f = SmallRun.files.get(loc.path)
            if f is None:
                f = SmallRun.files[loc.path] = super().__new__(cls)
                f._open(loc)
            return f
        f = super().__new__(cls)
        f._open(loc, source)
        return f

    def _open(self, loc: Location, source=None) -> None:
        self.loc = loc
        self.reader = source if source is not None else pa.ipc.open_file(loc.fs.open_input_file(loc.path))
        raw = (self.reader.schema.metadata or {}).get(PARTS_KEY)
        self.meta = json.loads(raw) if raw else None

    def groups(self, label: int | None) -> list[int]:
        """Batches of one label (None: every batch)."""
        if label is None:
            return list(range(self.reader.num_record_batches))
        return self.meta["parts"].get(str(label), []) if self.meta else []

    def nbytes(self, label: int | None) -> int:
        if self.meta is None:
            return self.loc.fs.get_file_info(self.loc.path).size
        return sum(self.meta["bytes"][g] for g in self.groups(label))

    def batch(self, i: int, columns: list[str] | None = None) -> pa.RecordBatch:
        b = self.reader.get_batch(i).replace_schema_metadata(None)
        return b.select(columns) if columns is not None else b

    def read(self, groups: list[int] | None = None, columns: list[str] | None = None) -> pa.Table:
        groups = range(self.reader.num_record_batches) if groups is None else groups
        schema = self.reader.schema.remove_metadata()
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        return pa.Table.from_batches([self.batch(g, columns) for g in groups], schema)


def read_work(loc: Location, columns: list[str] | None = None) -> pa.Table:
    """A whole work file as one table."""
    return WorkFile(loc).read(None, columns)


def read_label(loc: Location, label: int, columns: list[str] | None = None) -> pa.Table | None:
    """The rows of one label from a partitioned work file (None when it has none)."""
    f = WorkFile(loc)
    groups = f.groups(label)
    if not groups:
        return None
    return f.read(groups, columns)


# ---- grouping by key -----------------------------------------------------------------------


def group_min(keys: list[np.ndarray], order: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For rows grouped by equal keys: (representative row of each row's group, group size of
    each row), in row order; the representative is the row with the smallest `order` tuple."""
    n = len(keys[0])
    if n == 0:
        e = np.empty(0, np.int64)
        return e, e
    # lexsort: last key is primary -> (keys..., order...) with keys most significant
    perm = np.lexsort(tuple(reversed(keys + order)))
    new_group = np.zeros(n, bool)
    new_group[0] = True
    for k in keys:
        ks = k[perm]
        new_group[1:] |= ks[1:] != ks[:-1]
    starts = np.flatnonzero(new_group)
    group_id = np.cumsum(new_group) - 1
    sizes = np.diff(np.append(starts, n))
    rep, size = np.empty(n, np.int64), np.empty(n, np.int64)
    rep[perm] = perm[starts][group_id]
    size[perm] = sizes[group_id]
    return rep, size


def _group_in_memory(tables: list[pa.Table], keys, order, emit) -> None:
    t = pa.concat_tables(tables).combine_chunks()
    rep, size = group_min([t.column(c).to_numpy() for c in keys], [t.column(c).to_numpy() for c in order])
    emit(t, t, rep, size)


def spill_dir(out: Location, phase: str, task: str) -> Location:
    return out.child(f"_work/spill/{phase}/{task}")


SPILL_FANOUT_BITS = 4


def _source_tables(sources, columns):
    """Yield the tables of (file, label) sources one batch at a time (label None: all)."""
    for loc, label in sources:
        f = WorkFile(loc)
        for g in f.groups(label):
            yield pa.Table.from_batches([f.batch(g, columns)])


def reduce_groups(sources, columns: list[str], keys: list[str], order: list[str], budget: int,
                  spill: Location, emit, used_bits: int = 0, counters: dict | None = None) -> None:
    """Group rows by `keys` across sources and call emit(table, rep_table, rep_idx, size) in chunks:
    rep_table.take(rep_idx) is each row's representative (smallest `order`), size its group size.

    A partition whose rows (about 3x their size while sorting) exceed `budget` is split by the
    next bits of keys[0] into spill files, recursively; a group too big to sort (one key) is
    streamed twice: once for its minimum, once to emit.
    """
    counters = counters if counters is not None else {}
    if used_bits >= 64:  # every bit of keys[0] is used: all rows share it
        _stream_one_key(sources, columns, keys, order, emit)
        return
    files = [(WorkFile(loc), label) for loc, label in sources]  # each opened once
    if sum(f.nbytes(label) for f, label in files) * 3 <= budget:
        tables = [pa.Table.from_batches([f.batch(g, columns)]) for f, label in files for g in f.groups(label)]
        if tables:
            _group_in_memory(tables, keys, order, emit)
        return
    counters["spilled_partitions"] = counters.get("spilled_partitions", 0) + 1
    _spill_and_recurse(sources, columns, keys, order, budget, spill, emit, used_bits, counters)


def _spill_and_recurse(sources, columns, keys, order, budget, spill, emit, used_bits, counters):
    fan = 1 << SPILL_FANOUT_BITS
    spill.fs.create_dir(spill.path, recursive=True)
    subs = [spill.child(f"b{used_bits:02d}-{i:02d}.arrow") for i in range(fan)]
    writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
    sinks = {}
    key_lo, key_hi = None, None
    try:
        for t in _source_tables(sources, columns):
            k0 = t.column(keys[0]).to_numpy()
            lo, hi = (int(k0.min()), int(k0.max())) if len(k0) else (None, None)
            if lo is not None:
                key_lo = lo if key_lo is None else min(key_lo, lo)
                key_hi = hi if key_hi is None else max(key_hi, hi)
            # the next SPILL_FANOUT_BITS bits below the ones that chose this partition
            b = ((k0 << np.uint64(used_bits)) >> np.uint64(64 - SPILL_FANOUT_BITS)).astype(np.int64)
            for i in unique(b):
                i = int(i)
                if i not in writers:
                    sinks[i] = subs[i].fs.open_output_stream(subs[i].path)
                    writers[i] = pa.ipc.new_file(sinks[i], t.schema.remove_metadata())
                for piece in filter(t, b == i).combine_chunks().to_batches():
                    writers[i].write_batch(piece)
    finally:
        for i, w in writers.items():
            w.close()
            sinks[i].close()
    for i in sorted(writers):
        sub = [(subs[i], None)]
        if key_lo is not None and key_lo == key_hi:
            # one key for everything: splitting cannot help
            reduce_groups(sub, columns, keys, order, budget, spill.child(f"s{i:02d}"), emit, 64, counters)
        else:
            reduce_groups(sub, columns, keys, order, budget, spill.child(f"s{i:02d}"), emit,
                          used_bits + SPILL_FANOUT_BITS, counters)
        subs[i].fs.delete_file(subs[i].path)


def _stream_one_key(sources, columns, keys, order, emit) -> None:
    """A group too big to sort: one pass finds its representative, a second emits it in chunks."""
    best, best_row, n, first = None, None, 0, None
    for t in _source_tables(sources, columns):
        others = [t.column(c).to_numpy() for c in keys[1:]]
        if first is None and t.num_rows:
            first = [x[0] for x in others]
        if t.num_rows and any((x != f).any() for x, f in zip(others, first, strict=True)):
            # keys[0] collided but the full keys differ (a 1-in-2^64 event): group in memory.
            _group_in_memory(list(_source_tables(sources, columns)), keys, order, emit)
            return
        o = [t.column(c).to_numpy() for c in order]
        i = int(np.lexsort(tuple(reversed(o)))[0])
        cand = tuple(x[i] for x in o)
        if best is None or cand < best:
            best, best_row = cand, t.slice(i, 1)
        n += t.num_rows
    if best_row is None:
        return
    for t in _source_tables(sources, columns):
        emit(t, best_row, np.zeros(t.num_rows, np.int64), np.full(t.num_rows, n, np.int64))


# ---- the shared shape of a dedup stage ---------------------------------------------------

from curate.io.dataset import Dataset, check_same_schema  # noqa: E402
from curate.io.parquet import BATCH_ROWS, iter_batches, open_parquet  # noqa: E402
from curate.run.executor import Phase, Task, TaskContext, TaskResult  # noqa: E402
from curate.stages.base import MapStage, mark_rejected  # noqa: E402

CLUSTERS = "_clusters.parquet"
CLUSTER_SCHEMA = pa.schema([("id", pa.string()), ("cluster", pa.string()), ("cluster_size", pa.int64())])
DECISION_SCHEMA = pa.schema([("gid", pa.uint64()), ("rep_gid", pa.uint64()), ("rep_id", pa.string()), ("size", pa.int64())])


class GlobalDedup(MapStage):
    """Phases: signature (per shard) -> group (per partition) -> apply (per shard).

    Subclasses write per-shard key files in run_signature and per-partition decisions (gid,
    rep_gid, rep_id, size; labelled by shard) in run_group; apply drops or annotates rows.
    """

    reason = "duplicate"
    annotate_columns = ("dup_cluster", "dup_count")  # what --mode annotate adds
    needs_id = True  # dup_of, dup_cluster and the clusters file name documents by id
    bytes_per_row = 48  # of a key-file row, for sizing partitions

    def __init__(self, dataset: Dataset, params, memory_per_task: int):
        if dataset.stdin:
            raise UsageError("dedup needs its input as a dataset directory, not '-'",
                             hint="write the upstream stage to a directory first")
        super().__init__(dataset, params)
        self.keep = parse_keep(params.keep)
        self.memory_per_task = memory_per_task
        self._decisions = None

    # -- planning ----------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        shards = self.plan()
        self.check_schema(self._schema, self.dataset.shards[0].loc.uri)
        self.shard_rows = [open_parquet(s.loc).metadata.num_rows for s in self.dataset.shards]  # travels to the workers
        rows = sum(self.shard_rows)
        # Sized from a fixed budget, not --memory: the plan (and so resume and --task across
        # machines) must not depend on the machine; --memory only decides when to spill.
        # An input that runs in one process anyway (see POOL_MIN_BYTES) gets one partition: four
        # would only multiply its small work files.
        from curate.run.executor import pool_min_bytes

        small = self.dataset.total_bytes < pool_min_bytes()
        minimum = 1 if small else 4
        SmallRun.start(small)
        self.parts = partition_count(rows * self.rows_per_doc(), self.bytes_per_row, PLAN_BUDGET, minimum)
        groups = [Task(f"p{p:05d}", p) for p in range(self.parts)]
        return [
            Phase(self.first_phase, [Task(t.name, t.spec, t.size) for t in shards], "run_signature"),
            *self.middle_phases(groups),
            Phase("apply", shards, "run_task"),
        ]

    def check_schema(self, schema: pa.Schema, where: str) -> None:
        """Bad input is a clean error before any work, never a crash in a worker."""
        check_keep_column(schema, self.keep, where)
        if self.needs_id and "id" not in schema.names:
            raise InputError(f"no 'id' column; the columns are: {', '.join(schema.names)}", where=where,
                             hint="`curate ingest` gives every row a stable id (--id-field NAME to use your own)")
        if self.needs_id and not (pa.types.is_string(t := schema.field("id").type) or pa.types.is_large_string(t)):
            raise InputError(f"column 'id' has type {t}; dedup names documents by string ids (dup_of, dup_cluster)",
                             where=where, hint="re-ingest with `curate ingest --id-field id`, which keeps your ids as strings")
        if self.params.mode == "annotate":
            check_new_columns(schema, self.annotate_columns, where)

    def work_in_memory(self) -> None:
        SmallRun.memory = SmallRun.active()

    first_phase = "signature"

    def middle_phases(self, groups: list[Task]) -> list[Phase]:
        return [Phase("group", groups, "run_group")]

    def rows_per_doc(self) -> int:
        return 1

    def work(self, ctx: TaskContext, name: str) -> Location:
        """A work file, flat in _work/ ('bands/000001.arrow' is _work/bands-000001.arrow): a folder
        per kind cost a mkdir and an rmdir each, ~1 ms apiece when the journal is busy."""
        return ctx.out.child(f"_work/{name.replace('/', '-')}")

    def shard_index(self, task: Task) -> int:
        return task.spec

    def read_shard(self, task: Task, columns: list[str]):
        """(first row, batch) over one input shard, only the named columns."""
        row = 0
        check_ids = self.needs_id and "id" in columns
        for b in self.shard_batches(task.spec, columns):
            if check_ids and b.column("id").null_count:
                self._null_id(task.spec, row, b.column("id"))
            yield row, b
            row += b.num_rows

    def _null_id(self, shard: int, row: int, ids: pa.Array) -> None:
        first = row + int(np.flatnonzero(~np.asarray(ids.is_valid()))[0])
        raise InputError(f"row {first}: the 'id' is null ({ids.null_count} null in rows {row}-{row + len(ids) - 1})",
                         where=self.dataset.shards[shard].loc.uri,
                         hint="dedup names each removed document's keeper by id: give every row one "
                              "(`curate ingest` does), or drop those rows first (curate filter --where 'id is not null')")

    def shard_batches(self, shard: int, columns: list[str] | None = None):
        """The batches of one input shard, only `columns` (None: all); decoded once in a SmallRun."""
        loc = self.dataset.shards[shard].loc
        if not SmallRun.active():
            return iter_batches(loc, columns=columns)
        batches = SmallRun.decoded.get(shard)
        if batches is None:
            pf = open_parquet(loc)
            if self._schema is not None and shard != 0:  # as MapStage._batches checks it
                check_same_schema(self._schema, self.dataset.shards[0].loc.uri, pf.schema_arrow, loc.uri)
            batches = SmallRun.decoded[shard] = list(iter_batches(loc, pf=pf))
        return batches if columns is None else [b.select(columns) for b in batches]

    def _batches(self, task: Task, ctx: TaskContext):
        if task.spec is None or not SmallRun.active():
            yield from super()._batches(task, ctx)
            return
        batches = self.shard_batches(task.spec)
        total = max(sum(b.num_rows for b in batches), 1)
        size = self.dataset.shards[task.spec].size
        for b in batches:
            yield b, int(size * b.num_rows / total)  # as MapStage._batches counts bytes_in

    def columns_needed(self) -> list[str]:
        return list(dict.fromkeys((["id"] if self.needs_id else []) + ["text"] + self.keep.columns))

    # -- apply -----------------------------------------------------------------------------
    def load_decisions(self, ctx: TaskContext, shard: int) -> pa.Table:
        tables = []
        for p in range(self.parts):
            t = read_label(self.work(ctx, f"decide/p{p:05d}.arrow"), shard)
            if t is not None:
                tables.append(t)
        if not tables:
            return DECISION_SCHEMA.empty_table()
        t = pa.concat_tables(tables).combine_chunks()
        return take(t, np.argsort(t.column("gid").to_numpy(), kind="stable"))

    def begin_task(self, task: Task, ctx: TaskContext) -> None:
        self._shard = task.spec
        self._row = 0
        self._decisions = self.load_decisions(ctx, task.spec)
        self._dgid = self._decisions.column("gid").to_numpy()
        self._clusters: list[pa.Table] = []

    def transform(self, batch: pa.RecordBatch, result) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
        n = batch.num_rows
        if self._decisions is None:  # schema probe for an empty shard
            self._decisions = DECISION_SCHEMA.empty_table()
            self._dgid = np.empty(0, np.uint64)
            self._row, self._shard, self._clusters = 0, 0, []
        g = gids(self._shard, self._row, n)
        self._row += n
        lo, hi = np.searchsorted(self._dgid, g[0] if n else 0), np.searchsorted(self._dgid, g[-1] + np.uint64(1) if n else 0)
        d = self._decisions.slice(lo, hi - lo)
        pos = np.searchsorted(g, d.column("gid").to_numpy()) if n else np.empty(0, np.int64)
        d_rep_id = d.column("rep_id").combine_chunks()
        d_dup = d.column("rep_gid").to_numpy() != d.column("gid").to_numpy()
        size = np.ones(n, np.int64)
        is_dup = np.zeros(n, bool)
        if len(pos):
            size[pos] = d.column("size").to_numpy()
            is_dup[pos] = d_dup
            ids = take(batch.column("id"), pos)
            self._clusters.append(pa.table({"id": ids, "cluster": d.column("rep_id"), "cluster_size": d.column("size")}))
            result.count("clusters", int((~is_dup[pos]).sum()))
        if self.params.mode == "annotate":
            result.count(f"{self.reason}s_found", int(is_dup.sum()))
            which = np.full(n, -1, np.int64)  # row -> its decision, -1: in no cluster
            which[pos] = np.arange(len(pos))
            out = batch.append_column("dup_cluster", take_or_null(d_rep_id, which))
            out = out.append_column("dup_count", from_numpy(size))
            return out, None
        kept = filter(batch, ~is_dup)
        rej = filter(batch, is_dup)
        rej = mark_rejected(rej, self.reason, dup_of=filter(d_rep_id, d_dup))  # decisions are in row order
        result.count(self.reason, rej.num_rows)
        return kept, rej

    def end_task(self, task: Task, ctx: TaskContext) -> None:
        t = pa.concat_tables(self._clusters) if self._clusters else CLUSTER_SCHEMA.empty_table()
        loc = self.work(ctx, f"clusters/{task.spec:06d}.arrow")
        write_work(loc, [(0, cast(t, CLUSTER_SCHEMA))], CLUSTER_SCHEMA)
        self._decisions = None

    def finalize(self, out: Location, results: list[TaskResult]) -> dict:
        """Gather the per-shard cluster pieces into OUT/_clusters.parquet, in shard order."""
        from curate.io.parquet import ShardWriter

        w = ShardWriter(out.child(CLUSTERS), CLUSTER_SCHEMA)
        n = 0
        try:
            for i in range(len(self.dataset.shards)):
                piece = out.child(f"_work/clusters-{i:06d}.arrow")
                for b in read_work(piece).to_batches():
                    for off in range(0, b.num_rows, BATCH_ROWS):  # the batches a Parquet piece gave
                        w.write(b.slice(off, BATCH_ROWS))
                    n += b.num_rows
        finally:
            SmallRun.start(False)
        w.close()
        return {"clusters_file": CLUSTERS, "duplicated_documents": n, "partitions": self.parts}


def write_decisions(loc: Location, tables: list[pa.Table]) -> None:
    """A group task's decisions, labelled by shard so apply reads only its own."""
    t = pa.concat_tables(tables).combine_chunks() if tables else DECISION_SCHEMA.empty_table()
    t = cast(t, DECISION_SCHEMA)
    write_partitioned(loc, t, shard_of(t.column("gid").to_numpy()) if t.num_rows else np.empty(0, np.int64))


def decisions_from_groups(table: pa.Table, rep_table: pa.Table, rep_idx: np.ndarray, size: np.ndarray) -> pa.Table | None:
    """Members of groups of two or more: (gid, rep_gid, rep_id, size)."""
    mask = size > 1
    if not mask.any():
        return None
    idx = from_numpy(np.flatnonzero(mask))
    reps = from_numpy(rep_idx[mask])
    return pa.table({
        "gid": take(table.column("gid"), idx),
        "rep_gid": take(rep_table.column("gid"), reps),
        "rep_id": take(rep_table.column("id"), reps),
        "size": from_numpy(size[mask]),
    })
