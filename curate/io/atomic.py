"""Atomic writes: a reader sees the whole file or no file, never a half-written one."""

from __future__ import annotations

import os

from curate.io.location import Location

TMP_MARK = ".tmp-"


def tmp_sibling(loc: Location) -> Location:
    """A hidden sibling name; readers skip names that start with '.'."""
    head, _, name = loc.path.rpartition("/")
    tmp = f".{name}{TMP_MARK}{os.getpid()}-{os.urandom(4).hex()}"  # secrets.token_hex(4), without importing secrets
    uri_head = loc.uri.rpartition("/")[0]
    return Location(f"{uri_head}/{tmp}", f"{head}/{tmp}", loc.fs_uri)


def needs_rename(loc: Location) -> bool:
    # Object stores publish an object only when its upload completes: already atomic, and a
    # rename there is a copy. Local and HDFS paths need the temp-then-rename dance.
    return loc.fs_uri == "" or loc.fs_uri.startswith(("hdfs", "file"))


def commit(tmp: Location, final: Location) -> None:
    if tmp.is_local:
        os.replace(tmp.path, final.path)  # atomic on POSIX
    else:
        final.fs.move(tmp.path, final.path)


def write_bytes_atomic(loc: Location, data: bytes) -> None:
    target = tmp_sibling(loc) if needs_rename(loc) else loc
    with loc.fs.open_output_stream(target.path) as f:
        f.write(data)
    if target is not loc:
        commit(target, loc)


def is_tmp_name(name: str) -> bool:
    return name.startswith(".") and TMP_MARK in name
