"""Resolve what a user typed (path, glob, URI, '-') into files on a pyarrow filesystem."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from curate.errors import InputError

STDIO = "-"
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Location:
    """A directory or file on some filesystem. Picklable: workers re-open the filesystem."""

    uri: str  # what the user typed, for messages and manifests
    path: str  # path inside the filesystem
    fs_uri: str  # "" for the local filesystem, else scheme://authority used to rebuild it

    @property
    def fs(self) -> pafs.FileSystem:
        return _filesystem(self.fs_uri)

    @property
    def is_local(self) -> bool:
        return self.fs_uri == ""

    @property
    def fs_key(self) -> str:
        """Same key, same filesystem: the scheme and its options, without the path."""
        if not self.fs_uri:
            return ""
        scheme = self.fs_uri.split("://", 1)[0]
        query = self.fs_uri.split("?", 1)[1] if "?" in self.fs_uri else ""
        return f"{scheme}?{query}"

    def child(self, name: str) -> Location:
        sep = "" if self.uri.endswith("/") else "/"
        return Location(self.uri + sep + name, posixpath.join(self.path, name), self.fs_uri)

    def __str__(self) -> str:
        return self.uri


_FS_CACHE: dict[str, pafs.FileSystem] = {}


def _filesystem(fs_uri: str) -> pafs.FileSystem:
    if fs_uri not in _FS_CACHE:
        if fs_uri == "":
            _FS_CACHE[fs_uri] = pafs.LocalFileSystem()
        else:
            _FS_CACHE[fs_uri], _ = pafs.FileSystem.from_uri(fs_uri)
    return _FS_CACHE[fs_uri]


def locate(uri: str) -> Location:
    """A Location for a local path or a URI pyarrow.fs understands (s3://, gs://, hdfs://, file://)."""
    if "://" not in uri:
        return Location(uri, os.path.abspath(uri).replace(os.sep, "/"), "")
    scheme = uri.split("://", 1)[0]
    if scheme == "file":
        return Location(uri, uri[len("file://"):], "")
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InputError(
            f"cannot open this location: {e}",
            where=uri,
            hint="check the URI scheme and credentials (pyarrow.fs supports s3://, gs://, hdfs://)",
        ) from None
    # The full URI (query options such as endpoint_override included) rebuilds the filesystem
    # in workers; messages show it without the query.
    _FS_CACHE.setdefault(uri, fs)
    return Location(uri.split("?", 1)[0].rstrip("/"), path.rstrip("/"), uri)


def info(loc: Location) -> pafs.FileInfo:
    try:
        return loc.fs.get_file_info(loc.path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot read: {e}", where=loc.uri) from None


def list_files(loc: Location, pattern: str | None = None) -> list[tuple[Location, int]]:
    """Files under a directory (recursive, sorted), skipping names that start with '_' or '.'."""
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True))
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot list directory: {e}", where=loc.uri) from None
    out = []
    for fi in infos:
        if fi.type != pafs.FileType.File:
            continue
        rel = posixpath.relpath(fi.path, loc.path)
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if pattern is not None and not fnmatch.fnmatchcase(rel, pattern):
            continue
        out.append((loc.child(rel), fi.size))
    out.sort(key=lambda x: x[0].path)
    return out


def split_query(uri: str) -> tuple[str, str]:
    """'s3://b/x?endpoint_override=..' -> ('s3://b/x', '?endpoint_override=..'); local paths keep '?'."""
    if "://" in uri and "?" in uri:
        head, query = uri.split("?", 1)
        return head, "?" + query
    return uri, ""


def is_glob(uri: str) -> bool:
    return any(c in split_query(uri)[0] for c in GLOB_CHARS)


def expand(uri: str, suffixes: tuple[str, ...] | None = None) -> tuple[Location, list[tuple[Location, int]]]:
    """Expand a file, directory or glob into (base, [(file, size)]); base anchors relative names."""
    if is_glob(uri):
        path, query = split_query(uri)
        head = path
        while any(c in head for c in GLOB_CHARS):
            head = head.rsplit("/", 1)[0] if "/" in head else "."
        pattern = path[len(head):].lstrip("/") if head != "." else path
        base = locate(head + query)
        if info(base).type.name != "Directory":
            raise InputError("no files match this pattern (its directory does not exist)", where=uri,
                             hint="check the path; quote the glob so the shell does not expand it")
        files = list_files(base, pattern)
        if not files:
            raise InputError("no files match this pattern", where=uri, hint="check the glob (quote it so the shell does not expand it)")
        return base, files
    loc = locate(uri)
    fi = info(loc)
    if fi.type == pafs.FileType.NotFound:
        raise InputError("no such file or directory", where=uri,
                         hint="check the path (a glob must be quoted so the shell does not expand it)")
    if fi.type == pafs.FileType.File:
        parent = Location(posixpath.dirname(uri) or ".", posixpath.dirname(loc.path), loc.fs_uri)
        return parent, [(loc, fi.size)]
    files = list_files(loc)
    if suffixes:
        files = [f for f in files if f[0].path.endswith(suffixes)]
    if not files:
        raise InputError(
            "directory holds no input files" + (f" ({', '.join(suffixes)})" if suffixes else ""),
            where=uri,
            hint="curate stages read Parquet shards: convert other formats with `curate ingest`"
            if suffixes == (".parquet",) else "check the path",
        )
    return loc, files


def relative_name(base: Location, loc: Location) -> str:
    return posixpath.relpath(loc.path, base.path)
