"""Mart contracts: the typed view over the ODCS v3 documents in ``contracts/marts/``.

A mart contract is the promise a dbt mart makes to its consumers: its columns (DuckDB type,
logical type, business description), its grain (primary key where every grain column is
required), which columns are never NULL, allowed values and ranges, relationships to the
dimensions, a freshness SLA and table-level quality (row-count bounds, grain uniqueness).
The dbt model properties (``lib/dbt_marts_yaml.py``) and the Dagster metadata of the mart
assets (``defs/dbt/translator.py``) are generated from this view, nowhere else written.

How each ODCS field is read:

- ``schema[0].properties[]``: ``physicalType`` is the DuckDB type (the dbt ``data_type``),
  ``logicalType`` must fit it; ``required`` is a NOT NULL constraint; ``primaryKey`` /
  ``primaryKeyPosition`` the primary key; ``logicalTypeOptions.minimum`` / ``maximum`` a range;
  ``relationships[].to`` (``<mart>.<column>``) a relationship to another mart; a
  ``quality`` rule ``nullValues`` with ``mustBe: 0`` and ``severity: warning`` promises a
  nullable column is filled (a warning, not a constraint).
- ``schema[0].quality``: ``rowCount`` with ``mustBeGreaterOrEqualTo`` / ``mustBeLessOrEqualTo``
  / ``mustBeBetween`` bounds the table's rows; ``duplicateValues`` with ``mustBe: 0`` and
  ``arguments.properties`` names the grain (required; equal to the primary key if any).
- ``slaProperties`` ``freshness``: ``value`` minutes since the last build warn, ``valueExt`` fail.
- ``team.members`` with ``role: owner``: the owner.

What ODCS has no field for is in :data:`assets_project.lib.odcs.CUSTOM_PROPERTIES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

from open_data_contract_standard.model import (
    CustomProperty,
    DataQuality,
    OpenDataContractStandard,
    SchemaProperty,
)
from open_data_contract_standard.model import Relationship as OdcsRelationship
from pydantic import BaseModel, ConfigDict

from assets_project.lib.contracts import (
    _DECIMAL,
    IDENTIFIER,
    LOGICAL_TYPES,
    ContractError,
    Freshness,
    load_contract,
)
from assets_project.lib.odcs import FieldProblem, custom_properties, load_document

MART_CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts" / "marts"
MART_SUFFIX = ".odcs.yaml"

Severity = Literal["error", "warning"]


class EnumRef(BaseModel):
    """Allowed values taken from a source contract's enum (``enumFrom``), resolved."""

    model_config = ConfigDict(frozen=True)

    source: str
    column: str
    subset: str | None = None
    values: tuple[str, ...]


class Relationship(BaseModel):
    """Every non-NULL value of the column is a value of ``to_table.to_column``."""

    model_config = ConfigDict(frozen=True)

    to_table: str
    to_column: str
    severity: Severity = "error"


class MartColumn(BaseModel):
    """One column of a mart and what the mart promises about it."""

    model_config = ConfigDict(frozen=True)

    name: str
    data_type: str
    logical_type: str
    description: str
    not_null: bool = False
    primary_key: bool = False
    filled_warning: bool = False
    """A nullable column that should be filled: a NULL is a warning, not a broken promise."""
    accepted_values: EnumRef | None = None
    min: float | None = None
    max: float | None = None
    relationships: tuple[Relationship, ...] = ()


class RowCount(BaseModel):
    """Bounds on the number of rows of the mart, and how a breach is reported."""

    model_config = ConfigDict(frozen=True)

    min_rows: int | None = None
    max_rows: int | None = None
    severity: Severity = "error"


class MartContract(BaseModel):
    """The contract of one mart, as the generators read it."""

    model_config = ConfigDict(frozen=True)

    name: str
    id: str
    version: str
    owner: str
    description: str
    columns: tuple[MartColumn, ...]
    primary_key: tuple[str, ...]
    grain: tuple[str, ...]
    freshness: Freshness
    row_count: RowCount | None = None

    def column(self, name: str) -> MartColumn:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _custom(entries: Sequence[CustomProperty] | None, where: str, allowed: str) -> dict[str, Any]:
    try:
        return custom_properties(entries, where, (allowed,))
    except ValueError as exc:
        at, _, message = str(exc).partition(": ")
        raise FieldProblem(at, message) from exc


def _severity(value: object, where: str) -> Severity:
    """A rule's severity: ``error`` (the default) or ``warning``."""
    if value is None or value == "error":
        return "error"
    if value == "warning":
        return "warning"
    raise FieldProblem(where, f"severity {value!r} is not error or warning")


def _enum_ref(reference: object, where: str) -> EnumRef:
    parts = reference.split(".") if isinstance(reference, str) else []
    if len(parts) not in (2, 3):
        raise FieldProblem(where, f"{reference!r} is not '<source>.<column>[.<subset>]'")
    source, column, subset = parts[0], parts[1], (parts[2] if len(parts) == 3 else None)
    try:
        values = load_contract(source).enum(column, subset)
    except KeyError as exc:
        raise FieldProblem(
            where, f"{reference!r} names no source contract enum ({exc.args[0]})"
        ) from exc
    except ContractError as exc:
        raise FieldProblem(where, f"{reference!r}: no such source contract ({exc})") from exc
    return EnumRef(source=source, column=column, subset=subset, values=values)


def _data_type(prop: SchemaProperty, where: str) -> str:
    physical = (prop.physicalType or "").replace(" ", "").lower()
    decimal = _DECIMAL.match(physical)
    if decimal and 0 < int(decimal[2]) <= int(decimal[1]) <= 38:
        logical = "number"
    elif physical in LOGICAL_TYPES:
        logical = LOGICAL_TYPES[physical]
    else:
        raise FieldProblem(
            f"{where}.physicalType",
            f"{prop.physicalType!r} is not one of {', '.join(LOGICAL_TYPES)} or decimal(p,s)",
        )
    if prop.logicalType != logical:
        raise FieldProblem(f"{where}.logicalType", f"must be {logical!r} for {physical}")
    return physical


def _filled_warning(rules: Sequence[DataQuality] | None, required: bool, where: str) -> bool:
    for index, rule in enumerate(rules or ()):
        if rule.metric != "nullValues" or rule.mustBe != 0 or rule.severity != "warning":
            raise FieldProblem(
                f"{where}[{index}]",
                "a property's quality rule must be nullValues, mustBe 0, severity warning",
            )
        if required:
            raise FieldProblem(f"{where}[{index}]", "a required property is never NULL already")
    return bool(rules)


def _relationship(raw: OdcsRelationship, where: str, directory: Path) -> Relationship:
    target = raw.to if isinstance(raw.to, str) else ""
    table, _, column = target.partition(".")
    custom = _custom(raw.customProperties, f"{where}.customProperties", "severity")
    severity = _severity(custom.get("severity"), f"{where}.customProperties")
    path = directory / f"{table}{MART_SUFFIX}"
    if not path.is_file():
        raise FieldProblem(f"{where}.to", f"{target!r} names no mart contract ({path.name})")
    schemas = load_document(path).schema_ or []
    if column not in {p.name for schema in schemas for p in schema.properties or ()}:
        raise FieldProblem(f"{where}.to", f"{target!r}: {table} has no column {column!r}")
    return Relationship(to_table=table, to_column=column, severity=severity)


def _column(prop: SchemaProperty, where: str, directory: Path) -> MartColumn:
    if not prop.name or not IDENTIFIER.match(prop.name):
        raise FieldProblem(f"{where}.name", f"{prop.name!r} is not a lower-case SQL identifier")
    if not prop.description:
        raise FieldProblem(f"{where}.description", "every column needs a business description")
    data_type = _data_type(prop, where)
    custom = _custom(prop.customProperties, f"{where}.customProperties", "enumFrom")
    enum = None
    if "enumFrom" in custom:
        if data_type != "varchar":
            raise FieldProblem(f"{where}.customProperties", "enumFrom needs a varchar column")
        enum = _enum_ref(custom["enumFrom"], f"{where}.customProperties")
    if prop.enum:
        raise FieldProblem(f"{where}.enum", "a mart names a source contract's enum with enumFrom")
    options = dict(prop.logicalTypeOptions or {})
    bounds = {key: options.pop(key, None) for key in ("minimum", "maximum")}
    if options or (any(v is not None for v in bounds.values()) and data_type in ("varchar",)):
        raise FieldProblem(f"{where}.logicalTypeOptions", "only minimum and maximum, numbers only")
    if prop.primaryKey and not prop.required:
        raise FieldProblem(f"{where}.required", "a primary key column must be required")
    return MartColumn(
        name=prop.name,
        data_type=data_type,
        logical_type=LOGICAL_TYPES.get(data_type, "number"),
        description=" ".join(prop.description.split()),
        not_null=bool(prop.required),
        primary_key=bool(prop.primaryKey),
        filled_warning=_filled_warning(prop.quality, bool(prop.required), f"{where}.quality"),
        accepted_values=enum,
        min=bounds["minimum"],
        max=bounds["maximum"],
        relationships=tuple(
            _relationship(raw, f"{where}.relationships[{i}]", directory)
            for i, raw in enumerate(prop.relationships or ())
        ),
    )


def _table_quality(
    rules: Sequence[DataQuality] | None, where: str
) -> tuple[tuple[str, ...], RowCount | None]:
    grain: tuple[str, ...] = ()
    row_count = None
    for index, rule in enumerate(rules or ()):
        at = f"{where}[{index}]"
        severity = _severity(rule.severity, f"{at}.severity")
        if rule.metric == "duplicateValues" and rule.mustBe == 0 and not grain:
            grain = tuple((rule.arguments or {}).get("properties") or ())
            if not grain:
                raise FieldProblem(f"{at}.arguments.properties", "name the grain's columns")
        elif rule.metric == "rowCount" and row_count is None:
            low, high = rule.mustBeBetween or (
                rule.mustBeGreaterOrEqualTo,
                rule.mustBeLessOrEqualTo,
            )
            if low is None and high is None:
                raise FieldProblem(
                    at, "rowCount needs mustBeGreaterOrEqualTo/LessOrEqualTo/Between"
                )
            row_count = RowCount(
                min_rows=None if low is None else int(low),
                max_rows=None if high is None else int(high),
                severity=severity,
            )
        else:
            raise FieldProblem(at, "only one rowCount and one duplicateValues (mustBe 0) rule")
    if not grain:
        raise FieldProblem(where, "no duplicateValues rule names the grain")
    return grain, row_count


def _freshness(document: OpenDataContractStandard) -> Freshness:
    for index, sla in enumerate(document.slaProperties or ()):
        if sla.property == "freshness":
            if (
                sla.unit != "min"
                or not isinstance(sla.value, int)
                or not isinstance(sla.valueExt, int)
            ):
                raise FieldProblem(f"slaProperties[{index}]", "freshness: value, valueExt in min")
            return Freshness(warn_after_minutes=sla.value, fail_after_minutes=sla.valueExt)
    raise FieldProblem("slaProperties", "no freshness SLA")


def _owner(document: OpenDataContractStandard) -> str:
    team = document.team
    members = team.members if team is not None and not isinstance(team, list) else team
    owners = [m.username for m in members or () if m.role == "owner" and m.username]
    if len(owners) != 1:
        raise FieldProblem("team.members", "name exactly one member with role owner")
    return owners[0]


def _contract(document: OpenDataContractStandard, path: Path) -> MartContract:
    stem = path.name.removesuffix(MART_SUFFIX)
    if document.name != stem:
        raise FieldProblem("name", f"{document.name!r} differs from the file name ({stem})")
    schemas = document.schema_ or []
    if len(schemas) != 1 or schemas[0].name != stem:
        raise FieldProblem("schema", f"must hold exactly one object, named {stem}")
    (schema,) = schemas
    if not schema.description:
        raise FieldProblem("schema[0].description", "the mart needs a description")
    columns = tuple(
        _column(prop, f"schema[0].properties[{i}]", path.parent)
        for i, prop in enumerate(schema.properties or ())
    )
    names = [c.name for c in columns]
    if not columns or len(set(names)) != len(names):
        raise FieldProblem("schema[0].properties", "name each column once, at least one")
    keyed = sorted(
        (p.primaryKeyPosition or 0, p.name or "") for p in schema.properties or () if p.primaryKey
    )
    primary_key = tuple(name for _, name in keyed)
    grain, row_count = _table_quality(schema.quality, "schema[0].quality")
    if unknown := [c for c in grain if c not in names]:
        raise FieldProblem("schema[0].quality", f"the grain names unknown columns {unknown}")
    if primary_key and primary_key != grain:
        raise FieldProblem("schema[0].properties", f"primary key {primary_key} is not the grain")
    if not document.id or not document.version:
        raise FieldProblem("id", "id and version are required")
    return MartContract(
        name=stem,
        id=document.id,
        version=document.version,
        owner=_owner(document),
        description=" ".join(schema.description.split()),
        columns=columns,
        primary_key=primary_key,
        grain=grain,
        freshness=_freshness(document),
        row_count=row_count,
    )


def mart_contract_from_document(document: OpenDataContractStandard, path: Path) -> MartContract:
    """The typed view of the mart contract ``document`` read from ``path``."""
    try:
        return _contract(document, path)
    except ValueError as exc:  # FieldProblem, or a pydantic error of Freshness
        raise ContractError(f"contract {path}: {exc}") from exc


def load_mart_contract(path: Path) -> MartContract:
    """Load, validate (ODCS JSON Schema, then this view) and return the mart contract at path."""
    return mart_contract_from_document(load_document(path), path)


@cache
def load_mart_contracts(directory: Path = MART_CONTRACTS_DIR) -> dict[str, MartContract]:
    """Every mart contract under ``directory``, by mart name (sorted)."""
    paths = sorted(directory.glob(f"*{MART_SUFFIX}"))
    return {contract.name: contract for contract in map(load_mart_contract, paths)}
