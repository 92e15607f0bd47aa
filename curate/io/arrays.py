"""Arrow arrays from numpy, and take/filter, without importing pyarrow.compute or numpy.ma.

A small run is mostly start-up: `import pyarrow.compute` builds a Python wrapper for each of
~1000 kernels (~40 ms), and pa.array(ndarray) imports numpy.ma (~10 ms) to test for masked
arrays. The kernels themselves are the same: call_function is what pyarrow.compute calls.
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


def take(values, indices):
    """values.take(indices) for an array, chunked array, batch or table; indices may be numpy."""
    if isinstance(indices, np.ndarray):
        indices = from_numpy(indices)
    return _call("take", [values, indices], _compute().TakeOptions(boundscheck=True))


def filter(values, mask):  # noqa: A001 (the Arrow kernel's name)
    """values.filter(mask) for an array, batch or table; mask may be a numpy bool array."""
    if isinstance(mask, np.ndarray):
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
