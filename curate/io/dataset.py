"""An input dataset: its shards, its manifest, and checks that its schema is usable."""

from __future__ import annotations

import json
import posixpath
import sys
from dataclasses import dataclass, field

import pyarrow as pa

from curate.errors import InputError
from curate.io.location import STDIO, Location, expand, info, is_glob, locate, relative_name
from curate.io.manifest import SUCCESS, is_complete, read_manifest
from curate.io.parquet import read_schema

STREAM_MANIFEST_KEY = b"curate.manifest"


@dataclass(frozen=True)
class Shard:
    loc: Location
    name: str  # path relative to the dataset root, e.g. "part-00003.parquet"
    size: int


@dataclass
class Dataset:
    uri: str
    shards: list[Shard] = field(default_factory=list)
    manifest: dict | None = None
    stdin: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.shards)


def open_dataset(uri: str) -> Dataset:
    """Resolve a directory, file, glob or URI of Parquet shards, or '-' for an Arrow stream on stdin."""
    if uri == STDIO:
        return Dataset(uri, stdin=True)
    manifest = None
    if not is_glob(uri):
        root = locate(uri)
        if info(root).type.name == "Directory":
            manifest = _check_complete(root, uri)
    base, files = expand(uri, suffixes=(".parquet",))
    for loc, _ in files:
        if not loc.path.endswith(".parquet"):
            raise InputError(
                "not a Parquet file",
                where=loc.uri,
                hint="convert it first: curate ingest FILE OUT",
            )
    shards = [Shard(loc, relative_name(base, loc), size) for loc, size in files]
    if manifest is not None:
        _check_shards(manifest, [s.name for s in shards], uri)
    return Dataset(uri, shards, manifest)


def _check_shards(manifest: dict, found: list[str], uri: str) -> None:
    """A complete dataset is the shards its manifest lists: one lost or added later is an error,
    not a silently smaller or larger corpus."""
    if manifest.get("kind") == "rejects" or not isinstance(manifest.get("shards"), list):
        return  # rejects hold a shard only where a task rejected rows; the manifest lists the output's
    listed = {o for sh in manifest["shards"] if isinstance(sh, dict) for o in sh.get("outputs", ()) if o.endswith(".parquet")}
    missing, extra = sorted(listed - set(found)), sorted(set(found) - listed)
    if not missing and not extra:
        return
    what = [f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"] if missing else []
    what += [f"{len(extra)} not in it ({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})"] if extra else []
    raise InputError(
        f"the shards on disk do not match the dataset's manifest: {'; '.join(what)}",
        where=uri,
        hint="restore the files or rerun the stage that wrote it; to read the files as they are, "
             "remove its _manifest.json and _SUCCESS",
    )


def _check_complete(root: Location, uri: str) -> dict | None:
    """A dataset a stage is still writing (or that was killed) is refused, never half-read."""
    manifest = read_manifest(root)
    if manifest is not None and not is_complete(root):
        raise InputError(
            f"dataset is incomplete: it has a manifest but no {SUCCESS} marker",
            where=uri,
            hint="the stage that writes it has not finished: rerun that stage to complete it",
        )
    if manifest is None and info(root.child("_work")).type.name == "Directory":
        raise InputError(
            "dataset is incomplete: a stage is still writing it or was interrupted",
            where=uri,
            hint="rerun the stage that writes it; it resumes where it stopped",
        )
    return manifest


def check_text_column(schema: pa.Schema, where: str, text: str = "text") -> None:
    if text not in schema.names:
        raise InputError(
            f"no '{text}' column; the columns are: {', '.join(schema.names) or '(none)'}",
            where=where,
            hint="curate stages read a 'text' column: convert with `curate ingest --text-field NAME`",
        )
    t = schema.field(text).type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InputError(
            f"column '{text}' has type {t}, expected a string",
            where=where,
            hint="re-ingest with `curate ingest`, which converts the text field to a string column",
        )


def check_same_schema(reference: pa.Schema, ref_where: str, schema: pa.Schema, where: str) -> None:
    """Mixed schemas across shards break every stage downstream: say which shard differs and how."""
    if schema.equals(reference, check_metadata=False):
        return
    ref = {f.name: f.type for f in reference}
    got = {f.name: f.type for f in schema}
    diffs = []
    for name in sorted(set(ref) | set(got)):
        if name not in got:
            diffs.append(f"missing column '{name}'")
        elif name not in ref:
            diffs.append(f"extra column '{name}' ({got[name]})")
        elif ref[name] != got[name]:
            diffs.append(f"column '{name}' is {got[name]} here but {ref[name]} in {ref_where}")
    if not diffs and reference.names != schema.names:
        diffs.append("columns are in a different order")
    if not diffs:  # same names and types: nullability or field metadata
        for a, b in zip(reference, schema, strict=True):
            if a.nullable != b.nullable:
                diffs.append(f"column '{a.name}' is {'' if b.nullable else 'not '}nullable here but "
                             f"{'' if a.nullable else 'not '}nullable in {ref_where}")
            elif not a.equals(b, check_metadata=True):
                diffs.append(f"column '{a.name}' has other field metadata")
    diffs = diffs or ["the schemas' nested fields differ"]
    raise InputError(
        "schema differs from the dataset's first shard: " + "; ".join(diffs),
        where=where,
        hint="unify the shards first: `curate ingest` re-writes mixed Parquet inputs under one schema",
    )


def reference_schema(ds: Dataset) -> pa.Schema:
    return read_schema(ds.shards[0].loc)


def open_stdin_stream() -> pa.RecordBatchStreamReader:
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "'-' reads an Arrow IPC stream from stdin, but stdin is a terminal",
            where="stdin",
            hint="pipe another curate command into this one: curate A IN - | curate B - OUT",
        )
    try:
        return pa.ipc.open_stream(sys.stdin.buffer)
    except (pa.ArrowException, OSError) as e:
        raise InputError(
            f"stdin is not an Arrow IPC stream ({e})",
            where="stdin",
            hint="pipe the output of a curate command written to '-', or give a path to a dataset",
        ) from None


def stream_manifest(schema: pa.Schema) -> dict | None:
    meta = schema.metadata or {}
    raw = meta.get(STREAM_MANIFEST_KEY)
    return json.loads(raw) if raw else None


def shard_output_name(shard: Shard) -> str:
    """Output shards of a map stage follow the input's names, flattened to one level."""
    return shard.name.replace("/", "__") if "/" in shard.name else posixpath.basename(shard.name)
