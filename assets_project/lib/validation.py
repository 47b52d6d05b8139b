"""Vectorized validation of a batch against its source contract, in one DuckDB query.

The input is an Arrow batch whose contract columns are all text (as read from the file), plus
``_source_line``. The query casts every column to its contract type, evaluates every rule for
every row at once and returns, per row, the typed values and the list of rules the row broke
(column, rule, value). Rows with an empty list are valid. No per-row Python runs.

Values from the contract (enum members, bounds, patterns, column names as data) are bound as
query parameters; column names as identifiers go through :func:`quote_ident`, and the contract
model only admits ``[a-z_][a-z0-9_]*`` names in the first place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from assets_project.lib.contracts import Column, Contract

LINE_TEXT = "_line_text"
_VALUE_PREVIEW = 200
_INTEGER_PATTERN = r"[+-]?[0-9]+"
_SCAN_CHUNK_ROWS = 65_536


def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class _Params:
    """Collects named query parameters and hands out their placeholders."""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _typed(column: Column, raw: str) -> str:
    """SQL expression casting the text ``raw`` to the column's type (NULL when it does not fit)."""
    trimmed = f"trim({raw})"
    if column.type in ("bigint", "integer"):
        return (
            f"CASE WHEN regexp_full_match({trimmed}, '{_INTEGER_PATTERN}') "
            f"THEN TRY_CAST({trimmed} AS {column.sql_type}) END"
        )
    if column.type == "double":
        return (
            f"CASE WHEN isfinite(TRY_CAST({trimmed} AS DOUBLE)) "
            f"THEN TRY_CAST({trimmed} AS DOUBLE) END"
        )
    if column.type == "timestamp":
        return f"(TRY_CAST({trimmed} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
    if column.type == "json":
        return f"CASE WHEN json_valid({raw}) THEN {raw} END"
    if column.type == "varchar":
        return raw
    return f"TRY_CAST({trimmed} AS {column.sql_type})"


def _rules(column: Column, raw: str, typed: str, params: _Params) -> list[tuple[str, str]]:
    """(condition, rule text) pairs: the condition is true when the row breaks the rule."""
    rules: list[tuple[str, str]] = []
    if column.required:
        rules.append((f"{raw} IS NULL", "required value is missing"))
    rules.append((f"{raw} IS NOT NULL AND {typed} IS NULL", f"not a valid {column.type}"))
    if column.enum is not None:
        members = params.bind(list(column.enum))
        rules.append(
            (
                f"{typed} IS NOT NULL AND NOT list_contains({members}, {typed})",
                f"not one of {', '.join(column.enum)}",
            )
        )
    if column.min is not None:
        rules.append((f"{typed} < {params.bind(column.min)}", f"below minimum {column.min:g}"))
    if column.max is not None:
        rules.append((f"{typed} > {params.bind(column.max)}", f"above maximum {column.max:g}"))
    if column.regex is not None:
        pattern = params.bind(column.regex)
        rules.append(
            (f"NOT regexp_full_match({typed}, {pattern})", f"does not match {column.regex}")
        )
    if column.max_length is not None:
        limit = params.bind(column.max_length)
        rules.append((f"length({typed}) > {limit}", f"longer than {column.max_length}"))
    return rules


@dataclass(frozen=True)
class ValidationQuery:
    """The compiled validation query of one contract for one input layout."""

    sql: str
    params: dict[str, Any]


def compile_validation(
    contract: Contract,
    file_columns: Sequence[str] = (),
    *,
    jsonl: bool = False,
    passthrough: Sequence[str] = (),
) -> ValidationQuery:
    """Compile the validation query over a relation named ``batch``.

    ``file_columns`` are the text columns of a tabular file (absent optional contract columns
    are NULL; columns the contract does not know are kept in the rejected record). Columns in
    ``passthrough`` (new columns of a tabular file) are also returned as text for valid rows.
    With ``jsonl`` the relation has one text column ``_line_text`` holding a JSON document per
    row, and columns are extracted by their JSON path.
    """
    if jsonl and passthrough:
        raise ValueError("passthrough columns apply to tabular files only")
    present = set(file_columns)
    params = _Params()
    extracted: list[tuple[str, str]] = []  # (text expression, quoted target name)
    json_paths: list[str] = []
    for column in contract.columns:
        target = quote_ident(column.name)
        if jsonl:
            json_paths.append(column.path or f"$.{column.name}")
            extracted.append((f"NULLIF(_values[{len(json_paths)}], '')", target))
        elif column.name in present:
            extracted.append((f"NULLIF({target}, '')", target))
        elif column.path is None:
            extracted.append(("CAST(NULL AS VARCHAR)", target))
        else:
            raise ValueError(f"column {column.name} has a JSON path but the source is not JSON")

    if jsonl:
        # Each line is parsed twice, not once per column: json_valid, then one extraction of
        # every path as a list. Valid JSON whose first non-blank character is "{" is an object.
        paths = params.bind(json_paths)
        parsed = (
            f"SELECT _source_line, {LINE_TEXT}, "
            f"coalesce(json_valid({LINE_TEXT}) AND starts_with("
            f"ltrim({LINE_TEXT}, ' ' || chr(9) || chr(10) || chr(13)), '{{'), FALSE) AS _parse_ok "
            "FROM batch"
        )
        values = (
            f"SELECT *, CASE WHEN _parse_ok THEN json_extract_string({LINE_TEXT}, {paths}) END "
            f"AS _values FROM ({parsed})"
        )
        columns_sql = ", ".join(f"{expr} AS {target}" for expr, target in extracted)
        source_sql = (
            f"SELECT _source_line, {LINE_TEXT} AS _record, _parse_ok, {columns_sql} FROM ({values})"
        )
    else:
        # The original values ride along untouched; the record's JSON text is only built for
        # rejected rows (in the outer query), not for the valid majority.
        originals = [f'"__original_{i}"' for i in range(len(file_columns))]
        record = "CAST(json_object({}) AS VARCHAR)".format(
            ", ".join(
                f"{params.bind(name)}, {alias}"
                for name, alias in zip(file_columns, originals, strict=True)
            )
        )
        extracted += [(f"NULLIF({quote_ident(n)}, '')", quote_ident(n)) for n in passthrough]
        columns_sql = ", ".join(
            [f"{expr} AS {target}" for expr, target in extracted]
            + [
                f"{quote_ident(name)} AS {alias}"
                for name, alias in zip(file_columns, originals, strict=True)
            ]
        )
        source_sql = f"SELECT _source_line, {columns_sql} FROM batch"

    typed_columns: list[str] = []
    reason_items: list[str] = []
    for column in contract.columns:
        raw = f"src.{quote_ident(column.name)}"
        typed = _typed(column, raw)
        typed_columns.append(f"{typed} AS {quote_ident(column.name)}")
        for condition, rule in _rules(column, raw, typed, params):
            struct = (
                f"{{'column': {params.bind(column.name)}, 'rule': {params.bind(rule)}, "
                f"'value': left({raw}, {_VALUE_PREVIEW})}}"
            )
            reason_items.append(f"CASE WHEN coalesce({condition}, FALSE) THEN {struct} END")

    reasons = f"list_filter([{', '.join(reason_items)}], lambda r: r IS NOT NULL)"
    if jsonl:
        parse_reason = (
            f"{{'column': NULL::VARCHAR, 'rule': {params.bind('line is not a JSON object')}, "
            f"'value': left(_record, {_VALUE_PREVIEW})}}"
        )
        reasons = f"CASE WHEN _parse_ok THEN {reasons} ELSE [{parse_reason}] END"
    typed_columns += [f"src.{quote_ident(n)}" for n in passthrough]
    record_sql = "_record" if jsonl else f"CASE WHEN len(_reasons) > 0 THEN {record} END"
    sql = (
        f"WITH src AS ({source_sql}), "
        f"checked AS (SELECT src.*, {reasons} AS _reasons FROM src) "
        f"SELECT _source_line, {', '.join(typed_columns)}, _reasons, "
        f"{record_sql} AS _record FROM checked AS src"
    )
    return ValidationQuery(sql=sql, params=params.values)


def run_validation(
    connection: duckdb.DuckDBPyConnection, query: ValidationQuery, batch: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """Validate ``batch``; return (valid rows with typed columns, rejected rows with reasons).

    The valid table has the contract columns and ``_source_line``; the rejected table has
    ``_source_line``, ``_record`` (the original record as text) and ``_reasons``.
    """
    # Small chunks (zero-copy slices) let DuckDB scan the batch on every thread.
    chunked = pa.Table.from_batches(batch.to_batches(max_chunksize=_SCAN_CHUNK_ROWS), batch.schema)
    connection.register("batch", chunked)
    try:
        result = connection.sql(query.sql, params=query.params).to_arrow_table()
    finally:
        connection.unregister("batch")
    ok = pc.equal(pc.list_value_length(result["_reasons"]), 0)
    valid = result.drop_columns(["_reasons", "_record"]).filter(ok)
    rejected = result.select(["_source_line", "_record", "_reasons"]).filter(pc.invert(ok))
    return valid, rejected


def new_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection set up for validation (UTC, bounded threads)."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    return connection
