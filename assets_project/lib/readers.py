"""Stream a dropped file as Arrow batches of text columns, in bounded memory.

Every value is read as text so that the validator sees exactly what the file holds and can say
why a value does not fit its type. Rows that the parser cannot even split (a CSV row with the
wrong number of fields, a JSON line with a stray separator) are kept as malformed rows with
their text, so that nothing is lost. A file that cannot be read at all raises
:class:`UnreadableFileError` with a reason, and the caller quarantines it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assets_project.lib.validation import LINE_TEXT

BLOCK_SIZE = 16 << 20  # bytes of input per batch
PARQUET_BATCH_ROWS = 250_000
FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


class UnreadableFileError(Exception):
    """The file as a whole cannot be read; the message says why."""


@dataclass(frozen=True)
class MalformedRow:
    """A row the parser could not split into the file's columns."""

    line: int | None
    text: str
    reason: str


@dataclass
class FileBatches:
    """The batches of one file; ``malformed`` fills up while ``batches`` is consumed."""

    path: Path
    format: str
    columns: tuple[str, ...]
    batches: Iterator[pa.Table]
    malformed: list[MalformedRow] = field(default_factory=list)
    rows_read: int = 0


def file_format(path: Path) -> str:
    """The drop format from the file's suffix."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UnreadableFileError(
            f"unsupported file type {path.suffix!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def _numbered(table: pa.Table, start: int) -> pa.Table:
    lines = pa.array(range(start + 1, start + 1 + table.num_rows), pa.int64())
    return table.add_column(0, "_source_line", lines)


def _csv_header(path: Path) -> tuple[str, ...]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"header is not valid UTF-8: {exc}") from exc
    if not header or all(not name.strip() for name in header):
        raise UnreadableFileError("file is empty: no header line")
    names = tuple(name.strip() for name in header)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UnreadableFileError(f"duplicate column names in header: {', '.join(duplicates)}")
    if any(not n for n in names):
        raise UnreadableFileError("header has an empty column name")
    return names


def _stream(reader: Iterator[pa.RecordBatch], result: FileBatches) -> Iterator[pa.Table]:
    try:
        for batch in reader:
            table = pa.Table.from_batches([batch])
            numbered = _numbered(table, result.rows_read)
            result.rows_read += table.num_rows
            yield numbered
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise UnreadableFileError(f"cannot be parsed after row {result.rows_read}: {exc}") from exc


def _open_csv(path: Path) -> FileBatches:
    columns = _csv_header(path)
    result = FileBatches(path=path, format="csv", columns=columns, batches=iter(()))

    def on_invalid(row: pacsv.InvalidRow) -> str:
        result.malformed.append(
            MalformedRow(
                line=row.number,
                text=row.text,
                reason=f"row has {row.actual_columns} fields, header has {row.expected_columns}",
            )
        )
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=list(columns), skip_rows=1, block_size=BLOCK_SIZE
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    result.batches = _stream(reader, result)
    return result


def _drop_blank_lines(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    for table in batches:
        yield table.filter(pc.not_equal(pc.utf8_trim_whitespace(table[LINE_TEXT]), ""))


def _open_jsonl(path: Path) -> FileBatches:
    result = FileBatches(path=path, format="jsonl", columns=(), batches=iter(()))

    def on_invalid(row: pacsv.InvalidRow) -> str:
        result.malformed.append(
            MalformedRow(line=row.number, text=row.text, reason="line is not a JSON object")
        )
        return "skip"

    # Each line is one text field: the unit separator never occurs in JSON text, and a line
    # that holds one anyway becomes a malformed row instead of being split.
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=[LINE_TEXT], block_size=BLOCK_SIZE),
        parse_options=pacsv.ParseOptions(
            delimiter="\x1f",
            quote_char=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={LINE_TEXT: pa.string()}, strings_can_be_null=False
        ),
    )
    result.batches = _drop_blank_lines(_stream(reader, result))
    return result


def _parquet_as_text(path: Path, result: FileBatches) -> Iterator[pa.Table]:
    handle = pq.ParquetFile(path)
    for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        try:
            columns = [pc.cast(column, pa.string()) for column in batch.columns]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UnreadableFileError(f"a column cannot be read as text: {exc}") from exc
        yield pa.Table.from_arrays(columns, names=batch.schema.names)


def _open_parquet(path: Path) -> FileBatches:
    try:
        names = tuple(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {exc}") from exc
    result = FileBatches(path=path, format="parquet", columns=names, batches=iter(()))

    def numbered() -> Iterator[pa.Table]:
        try:
            for table in _parquet_as_text(path, result):
                yield _numbered(table, result.rows_read)
                result.rows_read += table.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise UnreadableFileError(
                f"cannot be read after row {result.rows_read}: {exc}"
            ) from exc

    result.batches = numbered()
    return result


def open_file(path: Path) -> FileBatches:
    """Open a dropped file for streaming; raises :class:`UnreadableFileError` on a bad header."""
    fmt = file_format(path)
    if fmt == "csv":
        return _open_csv(path)
    if fmt == "jsonl":
        return _open_jsonl(path)
    return _open_parquet(path)
