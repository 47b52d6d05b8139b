"""Vectorized validation of a batch against its source contract, in one DuckDB query.

The input is an Arrow batch whose contract columns are all text (as read from the file), plus
``_source_line``. The query casts every column to its contract type, evaluates every rule for
every row at once and returns, per row, the typed values and the list of rules the row broke
(column, rule, value). Rows with an empty list are valid. No per-row Python runs.

A value is taken exactly or rejected, never changed: dates and timestamps must lie in
0001-01-01..9999-12-31 (UTC), the range every reader of the lake supports (DuckDB alone also
reads ``infinity``, BC dates, later years and ``epoch``), and a decimal with more digits than
its type is rejected rather than rounded. Each value is parsed once, in a query stage of its
own; the helper columns of those stages have reserved names (see ``contracts.RESERVED_COLUMNS``),
which no file column may take.

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


# Dates and timestamps must fit every reader of the lake: pyarrow, delta-rs and Python's
# datetime stop at 9999-12-31, and none of them takes a BC date or DuckDB's infinity.
RANGE_RULE = "outside the supported range 0001-01-01..9999-12-31"
_RANGES = {
    "timestamp": ("TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59.999999'"),
    "date": ("DATE '0001-01-01'", "DATE '9999-12-31'"),
}
# A date or timestamp starts with a (signed) digit, or is infinity (then out of range): the
# keywords DuckDB also reads ('epoch') are not points in time.
_TEMPORAL_START = r"^[+-]?(?:[0-9]|(?i:infinity)$)"
# A decimal in plain or exponent notation, and its integer digits, fraction digits, exponent.
_DECIMAL_SHAPE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_DECIMAL_PARTS = r"^[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$"


@dataclass(frozen=True)
class _Cast:
    """How the text of one column becomes a value of its type, and the type's own rules.

    ``steps`` are helper expressions computed one query stage after another (step k may use
    the steps before it, as ``_step(i, k)``); ``value`` comes after them and is NULL unless
    the text is a valid value of the type, taken exactly (no rounding, in range). ``rules``
    are (condition, rule text) pairs over the raw text, the steps and the value. ``bound`` is
    the number min/max are checked on: the unrounded value, also when it does not fit.
    """

    value: str
    rules: tuple[tuple[str, str], ...]
    steps: tuple[str, ...] = ()
    bound: str | None = None


def _step(index: int, step: int) -> str:
    """The helper column of step ``step`` of contract column ``index`` (a reserved name)."""
    return f'"__step{step}_{index}"'


def _value(index: int) -> str:
    """The typed value of contract column ``index`` inside the query (a reserved name)."""
    return f'"__value_{index}"'


def _cast(column: Column, raw: str, index: int) -> _Cast:
    """The expressions that type the text ``raw`` of ``column`` (see :class:`_Cast`)."""
    trimmed = f"trim({raw})"
    value = _value(index)
    invalid = f"not a valid {column.type}"
    if column.type in ("bigint", "integer"):
        parsed = (
            f"CASE WHEN regexp_full_match({trimmed}, '{_INTEGER_PATTERN}') "
            f"THEN TRY_CAST({trimmed} AS {column.sql_type}) END"
        )
    elif column.type == "double":
        parsed = (
            f"CASE WHEN isfinite(TRY_CAST({trimmed} AS DOUBLE)) "
            f"THEN TRY_CAST({trimmed} AS DOUBLE) END"
        )
    elif column.type in _RANGES:
        return _temporal_cast(column, raw, index)
    elif column.type.startswith("decimal"):
        return _decimal_cast(column, raw, index)
    elif column.type == "json":
        parsed = f"CASE WHEN json_valid({raw}) THEN {raw} END"
    elif column.type == "varchar":
        parsed = raw
    else:
        parsed = f"TRY_CAST({trimmed} AS {column.sql_type})"
    return _Cast(value=parsed, rules=((f"{raw} IS NOT NULL AND {value} IS NULL", invalid),))


def _temporal_cast(column: Column, raw: str, index: int) -> _Cast:
    """A date or timestamp (in UTC) inside 0001-01-01..9999-12-31; keywords are not valid."""
    trimmed = f"trim({raw})"
    low, high = _RANGES[column.type]
    # DuckDB's date cast ignores a trailing era ('2026-01-05 10:00:00 BC' reads as AD).
    bc = f"upper(right({trimmed}, 2)) = 'BC'"
    if column.type == "timestamp":
        cast = f"(TRY_CAST({trimmed} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
    else:
        cast = f"TRY_CAST({trimmed} AS DATE)"
    parsed = _step(index, 0)
    return _Cast(
        steps=(
            f"CASE WHEN regexp_matches({trimmed}, '{_TEMPORAL_START}') AND NOT {bc} THEN {cast} END",
        ),
        value=f"CASE WHEN {parsed} BETWEEN {low} AND {high} THEN {parsed} END",
        rules=(
            (
                f"CASE WHEN {raw} IS NOT NULL AND {parsed} IS NULL THEN NOT {bc} END",
                f"not a valid {column.type}",
            ),
            (
                f"CASE WHEN {parsed} IS NULL THEN {bc} "
                f"ELSE NOT ({parsed} BETWEEN {low} AND {high}) END",
                RANGE_RULE,
            ),
        ),
    )


def _decimal_cast(column: Column, raw: str, index: int) -> _Cast:
    """A decimal(p,s) taken exactly: more fraction or integer digits are rejected, not rounded.

    Text in plain notation that fits is recognized by one regex (the common case). Any other
    text is measured (step 1: significant digits, the exponent of the last one, the digits
    before the point) and, in exponent notation, rewritten in plain notation before the cast:
    DuckDB's own cast rounds, and drops digits of a long mantissa with an exponent.
    """
    trimmed = f"trim({raw})"
    precision, scale = (int(n) for n in column.type[len("decimal(") : -1].split(","))
    whole = precision - scale
    integer = f"[0-9]{{0,{whole}}}" if whole else ""
    fits_plain = f"[+-]?0*{integer}(?:\\.[0-9]{{0,{scale}}}0*)?"
    parts = _step(index, 0)
    measured = _step(index, 1)
    digits = f"ltrim({parts}.i || {parts}.f, '0')"
    exponent = (
        f"(CASE WHEN {parts}.e = '' THEN 0::HUGEINT ELSE TRY_CAST({parts}.e AS HUGEINT) END "
        f"- length({parts}.f))"
    )
    # value = digits * 10^exponent; 'last' is the exponent of the last non-zero digit.
    measure = (
        f"CASE WHEN {parts}.shape THEN {{'significant': rtrim({digits}, '0'), "
        f"'last': {exponent} + length({digits}) - length(rtrim({digits}, '0')), "
        f"'whole': {exponent} + length({digits})}} END"
    )
    m = measured
    too_precise = f"({m}.significant <> '' AND {m}.last < -{scale})"
    too_large = f"({m}.significant <> '' AND {m}.whole > {whole})"
    sign = f"CASE WHEN starts_with({trimmed}, '-') THEN '-' ELSE '' END"
    padded = f"lpad({m}.significant, greatest(length({m}.significant), 1 - {m}.last)::INTEGER, '0')"
    plain = (
        f"CASE WHEN {m}.significant = '' THEN '0' "
        f"WHEN {m}.last >= 0 THEN {sign} || {m}.significant || repeat('0', {m}.last::BIGINT) "
        f"ELSE {sign} || left({padded}, length({padded}) + {m}.last::BIGINT) || '.' "
        f"|| right({padded}, (-{m}.last)::BIGINT) END"
    )
    cast = f"TRY_CAST({{}} AS {column.sql_type})"
    value = (
        f"CASE WHEN {parts} IS NULL THEN {cast.format(trimmed)} "
        f"WHEN NOT {too_precise} AND NOT {too_large} THEN {cast.format(plain)} END"
    )
    return _Cast(
        steps=(
            f"CASE WHEN NOT regexp_full_match({trimmed}, '{fits_plain}') THEN struct_insert("
            f"regexp_extract({trimmed}, '{_DECIMAL_PARTS}', ['i', 'f', 'e']), "
            f"shape := regexp_full_match({trimmed}, '{_DECIMAL_SHAPE}')) END",
            measure,
        ),
        value=value,
        rules=(
            (
                f"{raw} IS NOT NULL AND {_value(index)} IS NULL "
                f"AND NOT coalesce({too_precise} OR {too_large}, FALSE)",
                f"not a valid {column.type}",
            ),
            (too_precise, f"more than {_digits(scale)} after the decimal point"),
            (too_large, f"more than {_digits(whole)} before the decimal point"),
        ),
        bound=f"coalesce({_value(index)}, CASE WHEN {parts}.shape "
        f"THEN TRY_CAST({trimmed} AS DOUBLE) END)",
    )


MISSING_RULE = "required value is missing"
"""The rule a record breaks when a required column has no value (its dead-letter reason)."""


def _digits(count: int) -> str:
    return f"{count} digit" if count == 1 else f"{count} digits"


def _rules(
    column: Column, raw: str, cast: _Cast, index: int, params: _Params
) -> list[tuple[str, str]]:
    """(condition, rule text) pairs: the condition is true when the row breaks the rule."""
    typed = _value(index)
    rules: list[tuple[str, str]] = []
    if column.required:
        rules.append((f"{raw} IS NULL", MISSING_RULE))
    rules.extend(cast.rules)
    if column.enum is not None:
        members = params.bind(list(column.enum))
        rules.append(
            (
                f"{typed} IS NOT NULL AND NOT list_contains({members}, {typed})",
                f"not one of {', '.join(column.enum)}",
            )
        )
    bound = cast.bound or typed
    if column.min is not None:
        rules.append((f"{bound} < {params.bind(column.min)}", f"below minimum {column.min:g}"))
    if column.max is not None:
        rules.append((f"{bound} > {params.bind(column.max)}", f"above maximum {column.max:g}"))
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

    # Stages after src: the helper steps of each column, then the typed values, then the
    # reasons. Every stage reads the one before it as src, so raw text is src.<column>.
    casts = [
        _cast(column, f"src.{quote_ident(column.name)}", i)
        for i, column in enumerate(contract.columns)
    ]
    stages: list[list[str]] = []
    for step in range(max(len(c.steps) for c in casts)):
        stages.append(
            [
                f"{c.steps[step]} AS {_step(i, step)}"
                for i, c in enumerate(casts)
                if step < len(c.steps)
            ]
        )
    stages.append([f"{c.value} AS {_value(i)}" for i, c in enumerate(casts)])
    reason_items: list[str] = []
    failures: list[str] = []
    for i, (column, cast) in enumerate(zip(contract.columns, casts, strict=True)):
        raw = f"src.{quote_ident(column.name)}"
        for condition, rule in _rules(column, raw, cast, i, params):
            struct = (
                f"{{'column': {params.bind(column.name)}, 'rule': {params.bind(rule)}, "
                f"'value': left({raw}, {_VALUE_PREVIEW})}}"
            )
            failures.append(f"coalesce({condition}, FALSE)")
            reason_items.append(f"CASE WHEN {failures[-1]} THEN {struct} END")

    # The list of reasons is built only for rows that break a rule: DuckDB evaluates a CASE's
    # branch for the rows its condition selects, and stops at a row's first true rule in the
    # OR, so the valid majority costs the rules once and no list.
    reasons = (
        f"CASE WHEN {' OR '.join(failures) or 'FALSE'} THEN "
        f"list_filter([{', '.join(reason_items)}], lambda r: r IS NOT NULL) ELSE [] END"
    )
    if jsonl:
        parse_reason = (
            f"{{'column': NULL::VARCHAR, 'rule': {params.bind('line is not a JSON object')}, "
            f"'value': left(_record, {_VALUE_PREVIEW})}}"
        )
        reasons = f"CASE WHEN _parse_ok THEN {reasons} ELSE [{parse_reason}] END"
    stages.append([f"{reasons} AS _reasons"])
    relation = f"({source_sql})"
    for columns in stages:
        relation = f"(SELECT src.*, {', '.join(columns)} FROM {relation} AS src)"
    typed_columns = [
        f"{_value(i)} AS {quote_ident(column.name)}" for i, column in enumerate(contract.columns)
    ]
    typed_columns += [f"src.{quote_ident(n)}" for n in passthrough]
    record_sql = "_record" if jsonl else f"CASE WHEN len(_reasons) > 0 THEN {record} END"
    sql = (
        f"SELECT _source_line, {', '.join(typed_columns)}, _reasons, "
        f"{record_sql} AS _record FROM {relation} AS src"
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
