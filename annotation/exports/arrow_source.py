"""Read a query as Arrow record batches, with constant memory.

PostgreSQL: ``COPY (query) TO STDOUT (FORMAT csv)`` runs in a helper thread on the same
connection (so it sees the caller's transaction) and feeds a bounded queue; pyarrow's streaming
CSV reader parses it in C++ — no Python object per value, which is what makes a million rows
take seconds instead of tens of seconds. Other databases (the embedded SQLite default): a
server-side iterator over ``values_list`` rows, converted per batch.

The queryset must select only annotations, in the schema's order (``select_columns`` builds it),
so that the SQL column order is the schema's order; ``sql_batches`` reads a SELECT composed from
querysets' SQL (e.g. pairs joined to their vote counts) the same way. While batches are being
read, no other query may run on the same connection (it is in COPY mode): read everything you
need first, or use a second connection (as the export job does for its progress).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Expression, F, QuerySet

#: Bytes per CSV block parsed at once: bounds the memory of one batch (~4,000 wide rows).
CSV_BLOCK_BYTES = 1 << 20
#: Bytes the COPY thread gathers before handing a chunk over, and how many chunks may wait.
_CHUNK_BYTES = 1 << 20
_QUEUE_CHUNKS = 8
#: Rows per batch on the portable path.
PORTABLE_BATCH_ROWS = 10_000


class _Cancelled(Exception):
    """Raised inside the COPY thread when the reader went away (e.g. the client disconnected)."""


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def select_columns(queryset: QuerySet, columns: Mapping[str, str | Expression]) -> QuerySet:
    """``queryset`` selecting exactly ``columns`` (name -> field path or expression), in order."""
    aliases = {
        f"c{i}_{name}": (F(value) if isinstance(value, str) else value)
        for i, (name, value) in enumerate(columns.items())
    }
    qs = queryset.annotate(**aliases).values_list(*aliases)
    selected = list(qs.query.annotation_select)
    if selected != list(aliases):  # pragma: no cover - guards a Django internals change
        raise RuntimeError(f"unexpected column order {selected}")
    return qs


class _QueueWriter:
    """The file COPY writes to: gathers rows into ~1 MB chunks for the queue."""

    def __init__(self, chunks: queue.Queue, cancelled: threading.Event) -> None:
        self.chunks = chunks
        self.cancelled = cancelled
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= _CHUNK_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if not self.buffer:
            return
        chunk = bytes(self.buffer)
        self.buffer.clear()
        while True:
            if self.cancelled.is_set():
                raise _Cancelled
            try:
                self.chunks.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue


class _QueueReader(io.RawIOBase):
    """The file pyarrow reads: chunks from the queue, errors of the COPY thread re-raised."""

    def __init__(self, chunks: queue.Queue) -> None:
        self.chunks = chunks
        self.current = memoryview(b"")
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # noqa: ANN001 - a writable buffer
        while not self.current and not self.done:
            item = self.chunks.get()
            if item is _END:
                self.done = True
            elif isinstance(item, _Failed):
                self.done = True
                raise item.exc
            else:
                self.current = memoryview(item)
        n = min(len(target), len(self.current))
        target[:n] = self.current[:n]
        self.current = self.current[n:]
        return n


def _copy_batches(sql: str, schema: pa.Schema, alias: str) -> Iterator[pa.RecordBatch]:
    block_bytes = CSV_BLOCK_BYTES
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection  # psycopg2 connections are thread-safe; cursors are not shared
    chunks: queue.Queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
    cancelled = threading.Event()

    def run() -> None:
        writer = _QueueWriter(chunks, cancelled)
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", writer, size=1 << 16)
            writer.flush()
            chunks.put(_END)
        except _Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            if not cancelled.is_set():
                chunks.put(_Failed(exc))

    thread = threading.Thread(target=run, name="vidjudge-copy", daemon=True)
    thread.start()
    finished = False
    try:
        reader = pa_csv.open_csv(
            io.BufferedReader(_QueueReader(chunks), block_bytes),
            read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=block_bytes, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=schema,
                true_values=["t"],
                false_values=["f"],
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield batch.cast(schema) if batch.schema != schema else batch
        finished = True
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" not in str(exc):
            raise
        finished = True
    finally:
        if not finished:
            cancelled.set()
            while thread.is_alive():  # unblock a writer waiting on a full queue
                try:
                    chunks.get(timeout=0.1)
                except queue.Empty:
                    pass
        thread.join()
        if not finished:
            # COPY was abandoned mid-stream: the connection may be in an unknown state.
            connection.close()


def _rows_to_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    arrays = []
    for values, field in zip(columns, schema, strict=True):
        if pa.types.is_string(field.type):
            values = [None if v is None else str(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _portable_batches(qs: QuerySet, schema: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
    rows: list[tuple[Any, ...]] = []
    for row in qs.iterator(chunk_size=batch_rows):
        rows.append(row)
        if len(rows) >= batch_rows:
            yield _rows_to_batch(rows, schema)
            rows.clear()
    if rows:
        yield _rows_to_batch(rows, schema)


def _portable_sql_batches(
    sql: str, params: Sequence[Any], schema: pa.Schema, alias: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch_rows):
            yield _rows_to_batch(rows, schema)


def query_batches(
    qs: QuerySet, schema: pa.Schema, *, batch_rows: int = PORTABLE_BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Record batches of ``qs`` (built with :func:`select_columns`) with ``schema``.

    Lazy: nothing runs until the first batch is asked for. Empty results give no batch.
    """
    alias = qs.db
    if connections[alias].vendor == "postgresql":
        sql, params = qs.query.sql_with_params()
        yield from sql_batches(sql, params, schema, alias=alias)
    else:
        yield from _portable_batches(qs, schema, batch_rows)


def sql_batches(
    sql: str, params: Sequence[Any], schema: pa.Schema, *, alias: str = DEFAULT_DB_ALIAS, batch_rows: int | None = None
) -> Iterator[pa.RecordBatch]:
    """Record batches of a SELECT (``%s`` placeholders) whose columns are ``schema``'s, in order.

    For statements composed from querysets' SQL (e.g. a join with an aggregate). Lazy, like
    :func:`query_batches`.
    """
    connection = connections[alias]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            text = cursor.mogrify(sql, params).decode()
        yield from _copy_batches(text, schema, alias)
    else:
        yield from _portable_sql_batches(sql, params, schema, alias, batch_rows or PORTABLE_BATCH_ROWS)
