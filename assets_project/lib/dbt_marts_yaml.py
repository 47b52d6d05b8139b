"""The marts' dbt model properties, generated from the mart contracts (never written by hand).

``dbt_project/models/marts/_marts__models.yml`` is written from
``assets_project/contracts/marts/*.odcs.yaml`` (see ``lib/mart_contracts.py``):

- every mart has ``contract: {enforced: true}``, each column its ``data_type`` and description,
  so a model whose SQL returns another column set or type fails ``dbt build`` with dbt's
  contract message;
- the constraints DuckDB enforces: ``not_null`` on required columns, ``primary_key`` on the
  primary key (a model that breaks them fails at build time too);
- generic tests for what constraints do not cover: ``accepted_values`` (the source contract's
  enum, read through ``contract_values``), ``relationships``, ``accepted_range`` (column ranges
  and row-count bounds, ``tests/generic/accepted_range.sql``), ``unique_combination_of_columns``
  for a grain without primary key, and ``not_null`` at severity warn for nullable columns the
  contract promises to fill.

``python -m assets_project contracts generate`` writes it; a test fails when it is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from assets_project.lib.dbt_yaml import _scalar
from assets_project.lib.mart_contracts import (
    MART_CONTRACTS_DIR,
    MartColumn,
    MartContract,
    RowCount,
    load_mart_contracts,
)

MARTS_YAML_PATH = Path("dbt_project/models/marts/_marts__models.yml")
"""The generated file, relative to the repository root."""

_SEVERITY: dict[str, list[str]] = {"error": [], "warning": ["config:", "  severity: warn"]}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _test(name: str, arguments: Sequence[str] = (), severity: str = "error") -> list[str]:
    """One generic test as YAML lines (indent 0): ``- name:`` with config and arguments."""
    body = [*_SEVERITY[severity]]
    if arguments:
        body += ["arguments:", *(f"  {line}" for line in arguments)]
    if not body:
        return [f"- {name}"]
    return [f"- {name}:", *(f"    {line}" for line in body)]


def _range(low: float | None, high: float | None) -> list[str]:
    return [
        *([f"min_value: {_number(low)}"] if low is not None else []),
        *([f"max_value: {_number(high)}"] if high is not None else []),
    ]


def _column_tests(column: MartColumn) -> list[str]:
    tests: list[str] = []
    if column.filled_warning:
        tests += _test("not_null", severity="warning")
    if column.accepted_values is not None:
        ref = column.accepted_values
        args = ", ".join(f"'{part}'" for part in (ref.source, ref.column, ref.subset) if part)
        tests += _test("accepted_values", [f'values: "{{{{ contract_values({args}) }}}}"'])
    for relationship in column.relationships:
        tests += _test(
            "relationships",
            [f"to: ref('{relationship.to_table}')", f"field: {relationship.to_column}"],
            relationship.severity,
        )
    if column.min is not None or column.max is not None:
        tests += _test("accepted_range", _range(column.min, column.max))
    return tests


def _model_tests(contract: MartContract) -> list[str]:
    tests: list[str] = []
    row_count: RowCount | None = contract.row_count
    if row_count is not None:
        bounds = _range(row_count.min_rows, row_count.max_rows)
        tests += _test("accepted_range", ['expression: "count(*)"', *bounds], row_count.severity)
    if not contract.primary_key:
        grain = ", ".join(contract.grain)
        tests += _test("unique_combination_of_columns", [f"combination_of_columns: [{grain}]"])
    return tests


def _indented(lines: list[str], indent: int) -> list[str]:
    return [" " * indent + line for line in lines]


def render_marts_yaml(contracts: Sequence[MartContract]) -> str:
    """The text of ``_marts__models.yml`` for ``contracts`` (in the order given)."""
    lines = [
        "# Generated from assets_project/contracts/marts/*.odcs.yaml by",
        "# python -m assets_project contracts generate: do not edit by hand.",
        "version: 2",
        "",
        "models:",
    ]
    for index, contract in enumerate(contracts):
        lines += [
            *([""] if index else []),
            f"  - name: {contract.name}",
            *_scalar("description", contract.description, 4),
            "    config:",
            "      contract:",
            "        enforced: true",
        ]
        if contract.primary_key:
            lines += [
                "    constraints:",
                "      - type: primary_key",
                f"        columns: [{', '.join(contract.primary_key)}]",
            ]
        if model_tests := _model_tests(contract):
            lines += ["    data_tests:", *_indented(model_tests, 6)]
        lines.append("    columns:")
        for column in contract.columns:
            lines += [
                f"      - name: {column.name}",
                f"        data_type: {column.data_type}",
                *_scalar("description", column.description, 8),
            ]
            if column.not_null:
                lines += ["        constraints:", "          - type: not_null"]
            if column_tests := _column_tests(column):
                lines += ["        data_tests:", *_indented(column_tests, 10)]
    return "\n".join(lines) + "\n"


def generated_files(contracts_dir: Path = MART_CONTRACTS_DIR) -> dict[Path, str]:
    """The generated file (relative to the repository root) with the text the contracts give.

    The contract files are read as they are now (not from ``load_mart_contracts``' cache).
    """
    contracts = load_mart_contracts.__wrapped__(contracts_dir)
    return {MARTS_YAML_PATH: render_marts_yaml(list(contracts.values()))}
