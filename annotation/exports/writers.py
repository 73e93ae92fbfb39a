"""Arrow record batches -> file bytes, one writer per format, streaming.

Each writer is a generator: it takes an iterator of batches and yields ``bytes`` chunks as soon
as they are ready, so memory stays bounded by one batch (Parquet: one row group).

JSON Lines are built with vectorised Arrow string kernels rather than ``json.dumps`` per row:
every column becomes an array of JSON fragments (strings are escaped once per distinct value,
through a dictionary encoding), the fragments are joined element-wise and the joined array's
data buffer *is* the JSONL text. Timestamps are ISO 8601 UTC (``…Z``); NaN and infinities
become ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: A Parquet row group is written when this many rows, or bytes of Arrow data, are gathered.
PARQUET_ROW_GROUP_ROWS = 65_536
PARQUET_ROW_GROUP_BYTES = 8 << 20


class ChunkSink:
    """A write-only file that keeps what was written until :meth:`drain` hands it out."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _plain(array: pa.Array) -> pa.Array:
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


#: Characters JSON must escape inside a string (ensure_ascii=False leaves other text as is).
_NEEDS_JSON_ESCAPE = r'["\\\x00-\x1f]'


def _json_strings(array: pa.Array) -> pa.Array:
    """JSON string literals: plain values are quoted by a kernel; only values with quotes,
    backslashes or control characters go through ``json.dumps`` (once per distinct value)."""
    plain = _plain(array)
    quoted = pc.binary_join_element_wise('"', plain, '"', "")
    needs = pc.fill_null(pc.match_substring_regex(plain, _NEEDS_JSON_ESCAPE), False)
    if pc.any(needs).as_py():
        special = pc.dictionary_encode(pc.if_else(needs, plain, pa.scalar(None, pa.string())))
        values = special.dictionary.to_pylist()
        escaped = pa.array([json.dumps(v, ensure_ascii=False) for v in values], type=pa.string()).take(special.indices)
        quoted = pc.if_else(needs, escaped, quoted)
    return pc.fill_null(quoted, "null")


def _iso_timestamps(array: pa.Array, kind: pa.DataType) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (a cast: ~30x faster than strftime)."""
    utc = array.cast(pa.timestamp(kind.unit, tz="UTC")).cast(pa.timestamp(kind.unit))
    text = pc.replace_substring(pc.cast(utc, pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "")


def _json_fragments(array: pa.Array) -> pa.Array:
    kind = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _json_strings(array)
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(array, "true", "false"), "null")
    if pa.types.is_timestamp(kind):
        return pc.fill_null(pc.binary_join_element_wise('"', _iso_timestamps(array, kind), '"', ""), "null")
    if pa.types.is_floating(kind):
        finite = pc.is_finite(array)
        array = pc.if_else(finite, array, pa.scalar(None, type=kind))
    return pc.fill_null(pc.cast(array, pa.string()), "null")


def _buffer_bytes(lines: pa.Array) -> bytes:
    """The concatenated values of a string array without nulls, straight from its buffers."""
    _, offsets, data = lines.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return data[int(offs[0]) : int(offs[-1])].to_pybytes()


def batch_to_jsonl(batch: pa.RecordBatch) -> bytes:
    if batch.num_rows == 0:
        return b""
    parts: list[pa.Array | str] = []
    for index, name in enumerate(batch.schema.names):
        parts.append(("{" if index == 0 else ",") + json.dumps(name) + ":")
        parts.append(_json_fragments(batch.column(index)))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    return _buffer_bytes(lines)


def write_jsonl(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:  # noqa: ARG001
    for batch in batches:
        data = batch_to_jsonl(batch)
        if data:
            yield data


def _csv_fragments(array: pa.Array) -> pa.Array:
    """RFC 4180 cells: strings always quoted (quotes doubled), nulls empty, ISO timestamps."""
    kind = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        doubled = pc.replace_substring(_plain(array), '"', '""')
        return pc.fill_null(pc.binary_join_element_wise('"', doubled, '"', ""), "")
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(array, "true", "false"), "")
    if pa.types.is_timestamp(kind):
        return pc.fill_null(_iso_timestamps(array, kind), "")
    if pa.types.is_floating(kind):
        array = pc.if_else(pc.is_finite(array), array, pa.scalar(None, type=kind))
    return pc.fill_null(pc.cast(array, pa.string()), "")


def batch_to_csv(batch: pa.RecordBatch) -> bytes:
    if batch.num_rows == 0:
        return b""
    parts: list[pa.Array | str] = []
    for index in range(batch.num_columns):
        if index:
            parts.append(",")
        parts.append(_csv_fragments(batch.column(index)))
    parts.append("\r\n")
    return _buffer_bytes(pc.binary_join_element_wise(*parts, ""))


def write_csv(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    """CSV with a header row (also when there is no row); empty cells are nulls."""
    yield (",".join('"' + name.replace('"', '""') + '"' for name in schema.names) + "\r\n").encode()
    for batch in batches:
        data = batch_to_csv(batch)
        if data:
            yield data


def write_parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    """Parquet (zstd) written row group by row group; each group's bytes are yielded at once."""
    sink = ChunkSink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    rows = size = 0
    try:
        for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
            if rows >= PARQUET_ROW_GROUP_ROWS or size >= PARQUET_ROW_GROUP_BYTES:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=rows)
                pending, rows, size = [], 0, 0
                data = sink.drain()
                if data:
                    yield data
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=max(rows, 1))
    finally:
        writer.close()
    tail = sink.drain()
    if tail:
        yield tail


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}


def write_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str) -> Iterator[bytes]:
    return WRITERS[fmt](batches, schema)
