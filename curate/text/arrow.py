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
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"unknown normalisation {mode!r}")
    if mode == "simple":
        import pyarrow.compute as pc

        arr = pc.utf8_lower(arr)
    offsets, data, wide = buffers(arr)
    n = len(arr)
    out_off = np.empty(n + 1, np.int64)
    out_data = np.empty(max(int(offsets[-1] - offsets[0]) if n else 0, 1), np.uint8)
    used = _native.normalize(offsets, data, wide, out_off, out_data, mode == "simple")
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(out_off), pa.py_buffer(out_data[:used]))


def hash128(arr, seed: int = 0) -> np.ndarray:
    """MurmurHash3 x64 128 of every string: an (n, 2) uint64 array."""
    arr = as_string_array(arr)
    offsets, data, wide = buffers(arr)
    out = np.empty((len(arr), 2), np.uint64)
    _native.hash128(offsets, data, wide, out, seed)
    return out
