"""Stream a dropped file as Arrow batches of text columns, in bounded memory.

Every value is read as text so that the validator sees exactly what the file holds and can say
why a value does not fit its type. Rows that the parser cannot even split (a CSV row with the
wrong number of fields, a JSON line with a stray separator) and rows with a value that is not
valid UTF-8 are kept as malformed rows with their text, so that nothing is lost. A file that
cannot be read at all raises :class:`UnreadableFileError` with a reason, and the caller
quarantines it.

``_source_line`` is the 1-based position of the record: the data row for CSV (the header and
blank lines do not count, a quoted value spanning lines is one row), the physical line for JSON
lines, the row for Parquet. Rows the CSV parser skips keep their number, so the rows after them
are numbered as in the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assets_project.lib.contracts import is_reserved
from assets_project.lib.validation import LINE_TEXT

BLOCK_SIZE = 16 << 20  # bytes of input per batch
READ_AHEAD_BLOCKS = 2
"""Blocks pyarrow's CSV reader may read beyond the batches it handed out (see
:class:`BoundedReadAhead`)."""
READ_AHEAD_WAIT_S = 1.0
"""The longest a read waits for the parser to catch up before it reads anyway."""
PARQUET_BATCH_ROWS = 250_000
FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
# A value that is well-formed UTF-8 from start to end. Arrow runs regexes over binary columns
# byte by byte (RE2 in Latin-1 mode), so each \xNN below matches exactly one byte.
_UTF8_VALUE = (
    r"(?s)^(?:[\x00-\x7F]|[\xC2-\xDF][\x80-\xBF]|\xE0[\xA0-\xBF][\x80-\xBF]"
    r"|[\xE1-\xEC\xEE\xEF][\x80-\xBF]{2}|\xED[\x80-\x9F][\x80-\xBF]"
    r"|\xF0[\x90-\xBF][\x80-\xBF]{2}|[\xF1-\xF3][\x80-\xBF]{3}|\xF4[\x80-\x8F][\x80-\xBF]{2})*$"
)


class UnreadableFileError(Exception):
    """The file as a whole cannot be read; the message says why."""


@dataclass(frozen=True)
class MalformedRow:
    """A row the parser could not split into the file's columns, or not decode as UTF-8."""

    line: int | None
    text: str
    reason: str
    column: str | None = None
    """The first column at fault, when the problem is in one value (not valid UTF-8)."""


@dataclass
class FileBatches:
    """The batches of one file; ``malformed`` fills up while ``batches`` is consumed."""

    path: Path | str  # a file, or a stream's name (e.g. postgres:public.orders)
    format: str
    columns: tuple[str, ...]
    batches: Iterator[pa.Table]
    malformed: list[MalformedRow] = field(default_factory=list)


def file_format(path: Path) -> str:
    """The drop format from the file's suffix."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UnreadableFileError(
            f"unsupported file type {path.suffix!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def int_range(start: int, stop: int) -> pa.Array:
    """The int64 numbers ``start`` .. ``stop - 1`` (built from a Python range, 100x slower)."""
    return pa.array(np.arange(start, stop, dtype=np.int64))


class _LineNumbers:
    """Hands out ``_source_line`` numbers to the rows a parser keeps, past the rows it skipped.

    The CSV parser reports a skipped row (with its number) before it returns the batch that
    would have held it, so the rows of a batch take the next numbers that were not skipped.
    It may parse the next block on its I/O thread while the rows of this one take their
    numbers, hence the lock.
    """

    def __init__(self) -> None:
        self.next = 1
        self._skipped: list[int] = []
        self._lock = threading.Lock()

    def skip(self, number: int | None) -> None:
        if number is not None:
            with self._lock:
                self._skipped.append(number)

    def take(self, count: int) -> pa.Array:
        with self._lock:
            pending = [n for n in self._skipped if n >= self.next]
            candidates = int_range(self.next, self.next + count + len(pending))
            if pending:
                taken = pc.is_in(candidates, value_set=pa.array(pending, pa.int64()))
                candidates = candidates.filter(pc.invert(taken))
            numbers = candidates.slice(0, count)
            if count:
                self.next = numbers[-1].as_py() + 1
            self._skipped = [n for n in pending if n >= self.next]
            return numbers


def _as_bytes(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text columns as bytes: Parquet readers do not check UTF-8, a cast back to text does."""
    if pa.types.is_string(column.type):
        return pc.cast(column, pa.binary())
    if pa.types.is_large_string(column.type):
        return pc.cast(column, pa.large_binary())
    return column


def _is_bytes(column: pa.ChunkedArray) -> bool:
    return pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)


def _utf8_problem(value: bytes) -> str | None:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte 0x{value[exc.start]:02X} at offset {exc.start}"
    return None


def _not_utf8_rows(rejected: pa.Table) -> Iterator[MalformedRow]:
    """One malformed row per rejected row: only rows with a bad value come here.

    The record keeps the row as text with each undecodable byte written as ``\\xNN``: for a
    tabular file the values as one comma-separated line, for JSON lines the line. It is not a
    JSON object, so a dead-letter replay leaves it where it is instead of loading the escapes.
    """
    for row in rejected.to_pylist():
        line = row.pop("_source_line")
        problems = [
            (name, problem)
            for name, value in row.items()
            if isinstance(value, bytes) and (problem := _utf8_problem(value)) is not None
        ]
        values = [
            value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
            for value in row.values()
        ]
        if list(row) == [LINE_TEXT]:
            ((_, problem),) = problems
            yield MalformedRow(line, values[0], f"line is not valid UTF-8 ({problem})")
            continue
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(values)
        if len(problems) == 1:
            reason = f"not valid UTF-8 ({problems[0][1]})"
        else:
            reason = "not valid UTF-8 in " + ", ".join(f"{n} ({p})" for n, p in problems)
        yield MalformedRow(line=line, text=text.getvalue(), reason=reason, column=problems[0][0])


def _as_text(table: pa.Table, result: FileBatches) -> pa.Table:
    """Every column but ``_source_line`` as text; rows with a non-UTF-8 value become malformed.

    The check is one vectorized cast per column; only a batch that fails it is scanned with a
    regex to find its bad rows, and only those rows are looked at one by one.
    """
    names = table.column_names[1:]
    texts: dict[str, pa.ChunkedArray] = {}
    undecoded: dict[str, pa.ChunkedArray] = {}
    bad = None
    for name in names:
        column = _as_bytes(table[name])
        try:
            texts[name] = pc.cast(column, pa.string())
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            if not (_is_bytes(column) and isinstance(exc, pa.ArrowInvalid)):
                raise UnreadableFileError(
                    f"column {name} of type {column.type} cannot be read as text: {exc}"
                ) from exc
        undecoded[name] = column
        is_utf8 = pc.match_substring_regex(column, _UTF8_VALUE)
        not_utf8 = pc.invert(pc.fill_null(is_utf8, True))
        bad = not_utf8 if bad is None else pc.or_(bad, not_utf8)
    if bad is None:
        return pa.Table.from_arrays(
            [table["_source_line"], *(texts[n] for n in names)], names=["_source_line", *names]
        )
    if not pc.any(bad).as_py():  # the cast and the regex disagree: never loop on it
        raise UnreadableFileError(f"a column is not valid UTF-8 near row {table[0][0]}")
    rejected = pa.Table.from_arrays(
        [table["_source_line"], *(texts.get(n, undecoded.get(n)) for n in names)],
        names=["_source_line", *names],
    ).filter(bad)
    result.malformed.extend(_not_utf8_rows(rejected))
    return _as_text(table.filter(pc.invert(bad)), result)


def _csv_header(path: Path) -> tuple[str, ...]:
    """The column names of the header record (which may span lines inside quotes)."""
    with path.open("rb") as handle:
        raw = handle.readline(BLOCK_SIZE)
        while raw.count(b'"') % 2 and (more := handle.readline(BLOCK_SIZE)):
            raw += more
            if len(raw) > BLOCK_SIZE:
                raise UnreadableFileError(
                    f"header record is longer than {BLOCK_SIZE} bytes (a quote is not closed?)"
                )
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"header is not valid UTF-8: byte 0x{raw[bom + exc.start]:02X} "
            f"at offset {bom + exc.start} of the file"
        ) from exc
    header = next(csv.reader(io.StringIO(text, newline="")), None)
    if not header or all(not name.strip() for name in header):
        raise UnreadableFileError("file is empty: no header line")
    names = tuple(name.strip() for name in header)
    _check_names(names, "duplicate column names in header")
    if any(not n for n in names):
        raise UnreadableFileError("header has an empty column name")
    return names


def _check_names(names: tuple[str, ...], duplicates_message: str) -> None:
    """Refuse a file whose column names repeat, or take a name the lake uses itself.

    Names are compared without case, as DuckDB compares identifiers: ``Email`` next to
    ``email`` would read one column twice. A reserved name (``_source_line``, ``_record``, ...)
    would clash with a column the validation query or the raw table adds.
    """
    lowered = [name.lower() for name in names]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    if duplicates:
        raise UnreadableFileError(f"{duplicates_message}: {', '.join(duplicates)}")
    reserved = [name for name in names if is_reserved(name)]
    if reserved:
        columns = "column" if len(reserved) == 1 else "columns"
        raise UnreadableFileError(
            f"column name(s) reserved for the lake's own columns: {', '.join(reserved)} "
            f"(rename the {columns})"
        )


class BoundedReadAhead:
    """A binary source that pyarrow's streaming CSV reader reads at most
    :data:`READ_AHEAD_BLOCKS` blocks ahead of the batches taken from it.

    The reader reads blocks on an I/O thread into a queue of up to 32 blocks (not
    configurable: ARROW-12090). When parsing and validation are slower than the source (a
    local file, a PostgreSQL COPY), the queue fills: 32 blocks of 16 MiB, which measured 240
    MiB of the extraction's peak at 3e6 rows (BENCHMARKS.md). A read here waits until the
    batches taken catch up, or :data:`READ_AHEAD_WAIT_S` at most, so a batch that needs more
    blocks than that (a block with no complete row) is slowed, never stalled.
    """

    def __init__(self, source: BinaryIO, *, owned: bool = False) -> None:
        self._source = source
        self._owned = owned
        self._reads = 0
        self._taken = 0
        self._changed = threading.Condition()
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._changed:
            self._changed.wait_for(
                lambda: self.closed or self._reads - self._taken < READ_AHEAD_BLOCKS,
                timeout=READ_AHEAD_WAIT_S,
            )
            self._reads += 1
        return self._source.read(size)

    def taken(self) -> None:
        """One batch was handed out: the reader may read one more block."""
        with self._changed:
            self._taken += 1
            self._changed.notify_all()

    def close(self) -> None:
        """Close the source if this object opened it; reads wait no more."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()
        if self._owned:
            self._source.close()


def _stream(
    reader: Iterator[pa.RecordBatch],
    result: FileBatches,
    lines: _LineNumbers,
    source: BoundedReadAhead | None = None,
) -> Iterator[pa.Table]:
    try:
        for batch in reader:
            if source is not None:
                source.taken()
            table = pa.Table.from_batches([batch])
            numbered = table.add_column(0, "_source_line", lines.take(table.num_rows))
            yield _as_text(numbered, result)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise UnreadableFileError(f"cannot be parsed after row {lines.next - 1}: {exc}") from exc
    finally:
        if source is not None:
            source.close()


def _open_csv_reader(
    source: Path | BinaryIO, **options: object
) -> tuple[pacsv.CSVStreamingReader, BoundedReadAhead]:
    """pyarrow's streaming reader over ``source`` read through :class:`BoundedReadAhead`."""
    if isinstance(source, Path):
        bounded = BoundedReadAhead(source.open("rb", buffering=0), owned=True)
    else:
        bounded = BoundedReadAhead(source)
    # Parsing starts here: a first block that cannot be parsed fails the whole file.
    try:
        return pacsv.open_csv(bounded, **options), bounded
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        bounded.close()
        raise UnreadableFileError(f"cannot be parsed: {exc}") from exc
    except BaseException:
        bounded.close()
        raise


def _open_csv(path: Path) -> FileBatches:
    columns = _csv_header(path)
    return open_csv_stream(path, columns, name=path, skip_rows=1)


def open_csv_stream(
    source: Path | BinaryIO, columns: tuple[str, ...], *, name: Path | str, skip_rows: int = 0
) -> FileBatches:
    """Text batches of CSV data with the given columns, from a file or any binary stream.

    ``skip_rows`` counts header lines to skip. Rows with the wrong number of fields become
    malformed rows; the stream is read block by block, so memory stays bounded.
    """
    result = FileBatches(path=name, format="csv", columns=columns, batches=iter(()))
    lines = _LineNumbers()

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # row.number counts skipped header rows; it is known because the reader is
        # single-threaded.
        line = None if row.number is None else row.number - skip_rows
        lines.skip(line)
        result.malformed.append(
            MalformedRow(
                line=line,
                text=row.text,
                reason=f"row has {row.actual_columns} fields, header has {row.expected_columns}",
            )
        )
        return "skip"

    # Values are read as bytes and checked for UTF-8 per batch (see _as_text), so that one bad
    # byte costs one row rather than the whole file.
    reader, bounded = _open_csv_reader(
        source,
        read_options=pacsv.ReadOptions(
            column_names=list(columns),
            skip_rows=skip_rows,
            block_size=BLOCK_SIZE,
            use_threads=False,
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.binary()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    result.batches = _stream(reader, result, lines, bounded)
    return result


def _drop_blank_lines(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    for table in batches:
        yield table.filter(pc.not_equal(pc.utf8_trim_whitespace(table[LINE_TEXT]), ""))


def _open_jsonl(path: Path) -> FileBatches:
    if path.stat().st_size == 0:
        raise UnreadableFileError("file is empty: no lines")
    result = FileBatches(path=path, format="jsonl", columns=(), batches=iter(()))
    lines = _LineNumbers()

    def on_invalid(row: pacsv.InvalidRow) -> str:
        lines.skip(row.number)
        result.malformed.append(
            MalformedRow(line=row.number, text=row.text, reason="line is not a JSON object")
        )
        return "skip"

    # Each line is one text field: the unit separator never occurs in JSON text, and a line
    # that holds one anyway becomes a malformed row instead of being split.
    reader, bounded = _open_csv_reader(
        path,
        read_options=pacsv.ReadOptions(
            column_names=[LINE_TEXT], block_size=BLOCK_SIZE, use_threads=False
        ),
        parse_options=pacsv.ParseOptions(
            delimiter="\x1f",
            quote_char=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={LINE_TEXT: pa.binary()}, strings_can_be_null=False
        ),
    )
    result.batches = _drop_blank_lines(_stream(reader, result, lines, bounded))
    return result


def _parquet_batches(handle: pq.ParquetFile) -> Iterator[pa.RecordBatch]:
    try:
        yield from handle.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    finally:
        handle.close()


def _open_parquet(path: Path) -> FileBatches:
    try:
        handle = pq.ParquetFile(path)
        names = tuple(handle.schema_arrow.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {exc}") from exc
    try:
        _check_names(names, "duplicate column names")
    except UnreadableFileError:
        handle.close()
        raise
    # Refuse a column that cannot become text (a struct, a list) now, not half-way through.
    for column in handle.schema_arrow:
        try:
            pc.cast(pa.array([], column.type), pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            handle.close()
            raise UnreadableFileError(
                f"column {column.name} of type {column.type} cannot be read as text"
            ) from None
    result = FileBatches(path=path, format="parquet", columns=names, batches=iter(()))
    result.batches = _stream(_parquet_batches(handle), result, _LineNumbers())
    return result


def open_file(path: Path) -> FileBatches:
    """Open a dropped file for streaming; raises :class:`UnreadableFileError` on a bad header."""
    fmt = file_format(path)
    if fmt == "csv":
        return _open_csv(path)
    if fmt == "jsonl":
        return _open_jsonl(path)
    return _open_parquet(path)
