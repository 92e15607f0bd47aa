"""Hand Arrow string arrays to the C kernels without copies, and wrap their outputs back."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate import _native

NORMALIZE_MODES = ("none", "whitespace", "simple")


def as_string_array(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"expected a string array, got {arr.type}")
    if arr.null_count:
        arr = arr.fill_null("")  # a null text is an empty text to every kernel
    return arr


def buffers(arr: pa.Array) -> tuple[np.ndarray, pa.Buffer, bool]:
    """(offsets as numpy, data buffer, wide) of a string or large_string array, honouring slices."""
    wide = pa.types.is_large_string(arr.type)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if wide else np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = bufs[2] if bufs[2] is not None else pa.py_buffer(b"")
    return offsets, data, wide


def normalize(arr, mode: str = "simple") -> pa.Array:
    """none: as is; whitespace: runs of whitespace -> one space, trimmed; simple: also lower-case,
    punctuation and symbols -> space, digits -> 0 (Unicode-aware, tables in _unicode_tables.h)."""
    arr = as_string_array(arr)
    if mode == "none":
        return arr
    check_mode(mode)
    simple = mode == "simple"
    offsets, data, wide = buffers(arr)
    n = len(arr)
    total = int(offsets[-1] - offsets[0]) if n else 0
    out_off = np.empty(n + 1, np.int64)
    # lower case may grow a character from 2 bytes to 3; the SIMD stores may run 64 bytes past the end
    out_data = np.empty((total + total // 2 if simple else total) + 64, np.uint8)
    used = _native.normalize(offsets, data, wide, out_off, out_data, simple)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(out_off), pa.py_buffer(out_data[:used]))


def check_mode(mode: str) -> None:
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"unknown normalisation {mode!r}")


def normalize_hash128(arr, mode: str, seed: int = 0, raw_seed: int = 1) -> np.ndarray:
    """hash128(normalize(arr, mode), seed), except that a string whose normal form is empty gets
    hash128 of its raw text with raw_seed; one pass, no normalised array (mode whitespace or simple)."""
    check_mode(mode)
    if mode == "none":
        raise ValueError("normalize_hash128 needs a normalisation; hash the text with hash128")
    arr = as_string_array(arr)
    offsets, data, wide = buffers(arr)
    out = np.empty((len(arr), 2), np.uint64)
    _native.normalize_hash128(offsets, data, wide, out, mode == "simple", seed, raw_seed)
    return out


def hash128(arr, seed: int = 0) -> np.ndarray:
    """MurmurHash3 x64 128 of every string: an (n, 2) uint64 array."""
    arr = as_string_array(arr)
    offsets, data, wide = buffers(arr)
    out = np.empty((len(arr), 2), np.uint64)
    _native.hash128(offsets, data, wide, out, seed)
    return out
