"""_manifest.json and _SUCCESS: what made a dataset, from what, and whether it is complete."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa

from curate.errors import InputError
from curate.io.atomic import write_bytes_atomic
from curate.io.location import Location, info

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
# How many ancestors a manifest carries inline; older ones are summarised by digest only.
MAX_LINEAGE = 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(manifest: dict | None) -> str | None:
    if manifest is None:
        return None
    return "sha256:" + hashlib.sha256(canonical(manifest)).hexdigest()


def read_manifest(loc: Location) -> dict | None:
    m = loc.child(MANIFEST)
    if info(m).type.name == "NotFound":
        return None
    try:
        with m.fs.open_input_stream(m.path) as f:
            data = json.loads(f.read())
    except (ValueError, pa.ArrowException, OSError) as e:
        raise InputError(
            f"manifest is not valid JSON ({e})",
            where=m.uri,
            hint="the dataset may have been written by an interrupted or foreign tool; rerun the stage that made it",
        ) from None
    if not isinstance(data, dict) or "stage" not in data:
        raise InputError("manifest has no 'stage' field", where=m.uri, hint="rerun the stage that made this dataset")
    return data


def is_complete(loc: Location) -> bool:
    return info(loc.child(SUCCESS)).type.name == "File"


def write_manifest(loc: Location, manifest: dict) -> None:
    body = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    write_bytes_atomic(loc.child(MANIFEST), body)


def write_success(loc: Location) -> None:
    write_bytes_atomic(loc.child(SUCCESS), b"")


def summary(manifest: dict) -> dict:
    """The part of a manifest that its descendants carry in their lineage."""
    keep = ("stage", "curate_version", "params", "seed", "totals", "counters", "output", "finished")
    return {k: manifest.get(k) for k in keep} | {"digest": digest(manifest)}


def lineage_of(parent: dict | None) -> list[dict]:
    """The chain of ancestors (oldest first) for a manifest whose input has manifest `parent`."""
    if parent is None:
        return []
    chain = list(parent.get("lineage", [])) + [summary(parent)]
    return chain[-MAX_LINEAGE:]
