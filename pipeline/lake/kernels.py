"""The few Arrow compute kernels the lake uses, called through pyarrow's compiled dispatcher.

`import pyarrow.compute` generates a Python wrapper for each of Arrow's ~600 functions (about 35 ms of CPU in
every landing process, more than the landing of a small day), and Table.take/filter and Array.unique import it
on first use. These call the same C++ kernels by name (`pyarrow._compute`, ~10 ms to import), with the same
options, so their results are the same arrays.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pyarrow as pa
from pyarrow._compute import CastOptions, SetLookupOptions, SortOptions, call_function

# Tables, chunked arrays and arrays all go through the same kernels; Any keeps callers' types as they are.
T = TypeVar("T")


def _call(name: str, args: list[Any], options: Any = None) -> Any:
    return call_function(name, args, options)


def take(data: T, indices: pa.Array[Any] | list[int]) -> T:
    rows = indices if isinstance(indices, pa.Array) else pa.array(indices, pa.int64())
    result: T = _call("take", [data, rows])
    return result


def filter_rows(data: T, mask: Any) -> T:
    """Rows where `mask` is true (nulls drop), as Table.filter / Array.filter."""
    result: T = _call("filter", [data, mask])
    return result


def unique(values: Any) -> Any:
    return _call("unique", [values])


def is_in(values: Any, value_set: pa.Array[Any]) -> Any:
    return _call("is_in", [values], SetLookupOptions(value_set))


def equal(left: Any, right: Any) -> Any:
    return _call("equal", [left, right])


def and_(left: Any, right: Any) -> Any:
    return _call("and", [left, right])


def invert(values: Any) -> Any:
    return _call("invert", [values])


def indices_nonzero(values: Any) -> list[int]:
    """Positions of the true values, as Python ints."""
    positions: list[int] = _call("indices_nonzero", [values]).to_pylist()
    return positions


def sort_indices(table: pa.Table, keys: list[str]) -> pa.Array[Any]:
    """A stable ascending sort of the table by these columns (equal keys keep their row order)."""
    order: pa.Array[Any] = _call("sort_indices", [table], SortOptions([(k, "ascending") for k in keys]))
    return order


def run_starts(first: Any, *more: Any) -> pa.Array[Any]:
    """For columns sorted so that equal keys are adjacent: true at each row whose key (its values in these
    columns, none null) differs from the row before's, and at row 0. Filtering by it keeps each key once."""
    columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in (first, *more)]
    n = len(columns[0])
    if n < 2:
        return pa.array([True] * n, pa.bool_())
    head, tail = slice(0, n - 1), slice(1, None)
    repeated = equal(columns[0][tail], columns[0][head])
    for column in columns[1:]:
        repeated = and_(repeated, equal(column[tail], column[head]))
    starts: pa.Array[Any] = pa.concat_arrays([pa.array([True], pa.bool_()), invert(repeated)])
    return starts


def cast(values: Any, target: pa.DataType) -> Any:
    return _call("cast", [values], CastOptions(target))


def coalesce(*values: Any) -> Any:
    return _call("coalesce", list(values))


def list_flatten(values: Any) -> Any:
    return _call("list_flatten", [values])


def value_counts(values: Any) -> Any:
    return _call("value_counts", [values])
