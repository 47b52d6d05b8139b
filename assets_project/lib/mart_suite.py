"""The quality suite of a mart, compiled from its contract: one SQL rule per promise.

Each rule is a query for the rows that break a promise of the mart contract (a NULL where the
contract says required, a value outside its source enum or range, a key without its dimension
member, a grain twice) or, for row-count bounds, the table's count. Evaluating a rule counts the
breaking rows and keeps a small sample of them, for the check's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from assets_project.lib.mart_contracts import MartContract
from assets_project.lib.validation import quote_ident

Severity = Literal["error", "warning"]
SAMPLE_ROWS = 5
"""Breaking rows kept per rule for the check's metadata."""


@dataclass(frozen=True)
class Rule:
    """One promise of a mart: the query of the rows that break it (with its parameters).

    For ``row_count`` rules the query returns the one count instead, judged by ``bounds``.
    """

    name: str
    description: str
    severity: Severity
    sql: str
    parameters: tuple[Any, ...] = ()
    bounds: tuple[int | None, int | None] | None = None


@dataclass(frozen=True)
class RuleResult:
    """What evaluating a rule found."""

    rule: Rule
    passed: bool
    failing_rows: int
    sample: list[dict[str, str | None]] = field(default_factory=list)
    row_count: int | None = None


def _table(contract: MartContract) -> str:
    return f"main.{quote_ident(contract.name)}"


def rules_of(contract: MartContract) -> list[Rule]:
    """Every rule of ``contract``: columns in contract order, then the table's rules."""
    table = _table(contract)
    rules: list[Rule] = []
    for column in contract.columns:
        col = quote_ident(column.name)
        if column.not_null or column.filled_warning:
            rules.append(
                Rule(
                    name=f"{column.name}_not_null",
                    description=f"{column.name} is never NULL"
                    + ("" if column.not_null else " (NULL is allowed, but unusual)"),
                    severity="error" if column.not_null else "warning",
                    sql=f"SELECT * FROM {table} WHERE {col} IS NULL",
                )
            )
        if column.accepted_values is not None:
            ref = column.accepted_values
            origin = ".".join(p for p in (ref.source, ref.column, ref.subset) if p)
            rules.append(
                Rule(
                    name=f"{column.name}_accepted_values",
                    description=f"{column.name} is one of the values of {origin}",
                    severity="error",
                    sql=f"SELECT * FROM {table} WHERE {col} IS NOT NULL "
                    f"AND NOT list_contains(?, {col})",
                    parameters=(list(ref.values),),
                )
            )
        if column.min is not None or column.max is not None:
            low = "-inf" if column.min is None else f"{column.min:g}"
            high = "inf" if column.max is None else f"{column.max:g}"
            rules.append(
                Rule(
                    name=f"{column.name}_in_range",
                    description=f"{column.name} lies in [{low}, {high}]",
                    severity="error",
                    sql=f"SELECT * FROM {table} WHERE {col} < ? OR {col} > ?",
                    parameters=(
                        float("-inf") if column.min is None else column.min,
                        float("inf") if column.max is None else column.max,
                    ),
                )
            )
        for rel in column.relationships:
            target = f"main.{quote_ident(rel.to_table)}"
            rules.append(
                Rule(
                    name=f"{column.name}_in_{rel.to_table}",
                    description=f"every {column.name} is a {rel.to_table}.{rel.to_column}",
                    severity=rel.severity,
                    sql=f"SELECT * FROM {table} AS t WHERE t.{col} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM {target} AS d WHERE d.{quote_ident(rel.to_column)} = t.{col})",
                )
            )
    grain = ", ".join(quote_ident(c) for c in contract.grain)
    rules.append(
        Rule(
            name="grain_unique",
            description=f"one row per {', '.join(contract.grain)} (NULL counts as a value)",
            severity="error",
            sql=f"SELECT {grain}, count(*) AS rows_with_this_grain FROM {table} "
            f"GROUP BY {grain} HAVING count(*) > 1",
        )
    )
    if contract.row_count is not None:
        bounds = (contract.row_count.min_rows, contract.row_count.max_rows)
        rules.append(
            Rule(
                name="row_count_in_bounds",
                description=f"rows between {bounds[0] or 0} and {bounds[1] or 'any number'}",
                severity=contract.row_count.severity,
                sql=f"SELECT count(*) FROM {table}",
                bounds=bounds,
            )
        )
    return rules


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def evaluate(connection: duckdb.DuckDBPyConnection, rule: Rule) -> RuleResult:
    """Run ``rule`` on ``connection``: the breaking rows' count and a sample of them."""
    if rule.bounds is not None:
        (count,) = connection.execute(rule.sql).fetchall()[0]
        low, high = rule.bounds
        passed = (low is None or count >= low) and (high is None or count <= high)
        return RuleResult(rule, passed, 0 if passed else 1, row_count=int(count))
    (failing,) = connection.execute(
        f"SELECT count(*) FROM ({rule.sql})", list(rule.parameters)
    ).fetchall()[0]
    sample: list[dict[str, str | None]] = []
    if failing:
        cursor = connection.execute(f"{rule.sql} LIMIT {SAMPLE_ROWS}", list(rule.parameters))
        names = [d[0] for d in cursor.description or ()]
        sample = [
            {n: _text(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()
        ]
    return RuleResult(rule, failing == 0, int(failing), sample)


def evaluate_all(connection: duckdb.DuckDBPyConnection, rules: Sequence[Rule]) -> list[RuleResult]:
    """Every rule of a suite, in order."""
    return [evaluate(connection, rule) for rule in rules]
