"""Arrow arrays from numpy, and take/filter, without importing pyarrow.compute or numpy.ma.

A small run is mostly start-up: `import pyarrow.compute` builds a Python wrapper for each of
~1000 kernels (~40 ms), and pa.array(ndarray) imports numpy.ma (~10 ms) to test for masked
arrays. The kernels themselves are the same: call_function is what pyarrow.compute calls. take
and filter of numeric and string columns without nulls skip even those (see _take_array).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def from_numpy(a: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """A 1-D numeric or bool ndarray as an Arrow array without nulls (what pa.array gives)."""
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        bits = np.packbits(a, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(bits)])
    if type is not None and pa.from_numpy_dtype(a.dtype) != type:
        a = np.ascontiguousarray(a, type.to_pandas_dtype())
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def _compute():
    """pyarrow._compute, the module pyarrow.compute's names come from; the public module (same
    names) should a pyarrow ever move it."""
    try:
        import pyarrow._compute as c
    except ImportError:
        import pyarrow.compute as c
    return c


def _call(name: str, args: list, options=None):
    return _compute().call_function(name, args, options)


_BINARY = {pa.string(): False, pa.binary(): False, pa.large_string(): True, pa.large_binary(): True}


def _take_array(a: pa.Array, idx: np.ndarray) -> pa.Array | None:
    """Arrow's take of an array without nulls, numeric or (large) string/binary, in numpy and C
    (Arrow's kernels live in libarrow_compute: ~7 ms to load); None for what only Arrow does."""
    if a.null_count:
        return None
    t = a.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        v = np.frombuffer(a.buffers()[1], t.to_pandas_dtype())[a.offset : a.offset + len(a)]
        return from_numpy(v[idx])
    wide = _BINARY.get(t)
    if wide is None:
        return None
    from curate import _native

    _, offs, data = a.buffers()
    offs = np.frombuffer(offs, np.int64 if wide else np.int32)[a.offset : a.offset + len(a) + 1] if len(a) else np.zeros(1, np.int64 if wide else np.int32)
    out = np.empty(len(idx) + 1, offs.dtype)
    values = _native.take_binary(offs, data if data is not None else b"", idx, wide, out)
    return pa.Array.from_buffers(t, len(idx), [None, pa.py_buffer(out), pa.py_buffer(values)])


def _take_native(values, idx: np.ndarray):
    """values.take(idx) without Arrow's kernels, or None when a column needs them."""
    if np.any(idx < 0) or np.any(idx >= len(values)):
        raise IndexError(f"take: index out of bounds for length {len(values)}")
    if isinstance(values, pa.Array):
        return _take_array(values, idx)
    if isinstance(values, pa.ChunkedArray):
        r = _take_array(values.combine_chunks(), idx) if values.num_chunks else None
        return None if r is None else pa.chunked_array([r], values.type)
    if isinstance(values, (pa.RecordBatch, pa.Table)):
        cols = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in values.columns]
        cols = [_take_array(c, idx) for c in cols]
        if any(c is None for c in cols):
            return None
        if isinstance(values, pa.RecordBatch):
            return pa.RecordBatch.from_arrays(cols, schema=values.schema)
        return pa.Table.from_arrays(cols, schema=values.schema)
    return None


def take(values, indices):
    """values.take(indices) for an array, chunked array, batch or table; indices may be numpy."""
    if isinstance(indices, np.ndarray):
        idx = np.ascontiguousarray(indices, np.int64)
        r = _take_native(values, idx)
        if r is not None:
            return r
        indices = from_numpy(idx)
    return _call("take", [values, indices], _compute().TakeOptions(boundscheck=True))


def filter(values, mask):  # noqa: A001 (the Arrow kernel's name)
    """values.filter(mask) for an array, batch or table; mask may be a numpy bool array."""
    if isinstance(mask, np.ndarray):
        r = _take_native(values, np.flatnonzero(mask)) if len(mask) == len(values) else None
        if r is not None:
            return r
        mask = from_numpy(mask)
    return _call("filter", [values, mask], _compute().FilterOptions("drop"))


def unique(a: np.ndarray) -> np.ndarray:
    """np.unique of a 1-D array (sorted distinct values); np.unique imports numpy.ma."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.unique(np.stack([a, b], 1), axis=0): distinct (a, b) rows sorted by a, then b."""
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.ones(len(a), bool)
    if len(a) > 1:
        keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return np.stack([a[keep], b[keep]], axis=1)


def take_or_null(values, idx: np.ndarray):
    """take(values, idx) where a negative index gives a null."""
    valid = idx >= 0
    data = np.ascontiguousarray(np.where(valid, idx, 0), np.int64)
    bits = np.packbits(valid, bitorder="little")
    ind = pa.Array.from_buffers(pa.int64(), len(idx), [pa.py_buffer(bits), pa.py_buffer(data)], int((~valid).sum()))
    return take(values, ind)


def cast(table, schema: pa.Schema):
    """table.cast(schema), skipped when it is a no-op (a cast imports pyarrow.compute)."""
    return table if table.schema.equals(schema, check_metadata=True) else table.cast(schema)
