"""Source contracts: one ODCS v3 document per source is the single source of truth for it.

``assets_project/contracts/raw/<source>.odcs.yaml`` names the source's columns with their
types and rules, its primary key, the column whose date partitions the raw Delta table, the
time column that orders versions of a record, its freshness SLA and where it comes from.
Everything downstream (validation, Delta schemas, dbt sources, Dagster metadata) is derived
from :class:`Contract`, this project's typed view of the document, built by
:func:`contract_from_document` (the mapping from ODCS fields is documented there and in the
README's "Contracts" section).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from open_data_contract_standard.model import (
    DataQuality,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
    Server,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# ContractError lives in lib/odcs.py; callers keep importing it from here too.
from assets_project.lib.odcs import (
    ContractError,
    FieldProblem,
    custom_properties,
    field_path,
    load_document,
)

CONTRACTS_ROOT = Path(__file__).resolve().parent.parent / "contracts"
"""Every contract (ODCS documents), one folder per layer: ``raw/`` (sources), ``marts/``."""
CONTRACTS_DIR = CONTRACTS_ROOT / "raw"
"""The source contracts: ``<source>.odcs.yaml``."""
CONTRACT_SUFFIX = ".odcs.yaml"

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),(\d{1,2})\)$")
_SIMPLE_TYPES = ("bigint", "integer", "double", "varchar", "boolean", "date", "timestamp", "json")


# The one list of column names the lake uses itself: the metadata columns of every raw table
# (lake.METADATA_FIELDS) and the working columns of the readers and the validation query
# (validation.py), plus every name starting with RESERVED_PREFIX (the query's ``__original_N``).
# A contract column or a file's column may not take one; names are compared without case,
# as DuckDB compares identifiers.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {
        "_source",
        "_source_line",
        "_batch_id",
        "_extracted_at",
        "_partition_date",
        "_line_text",
        "_parse_ok",
        "_values",
        "_record",
        "_reasons",
    }
)
RESERVED_PREFIX = "__"


def is_reserved(name: str) -> bool:
    """Whether ``name`` is (in any case) a column name the lake uses itself."""
    lowered = name.lower()
    return lowered in RESERVED_COLUMNS or lowered.startswith(RESERVED_PREFIX)


def re2_problem(pattern: str) -> str | None:
    """Why DuckDB's RE2, which runs the contract's regexes, refuses ``pattern`` (None: fine).

    Python's ``re`` is not the judge: it takes lookarounds and backreferences that RE2 does
    not, and refuses RE2 syntax such as ``\\p{L}`` or ``[[:alnum:]]``.
    """
    connection = duckdb.connect()
    try:
        connection.execute("SELECT regexp_full_match('', $pattern)", {"pattern": pattern})
    except duckdb.Error as exc:
        return str(exc).removeprefix("Invalid Input Error: ")
    finally:
        connection.close()
    return None


def _check_identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a lower-case SQL identifier ([a-z_][a-z0-9_]*)")
    return value


class Column(BaseModel):
    """One column of a source, with the rules every record must satisfy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    description: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    enum_subsets: tuple[tuple[str, tuple[str, ...]], ...] = Field(
        default=(),
        description="Named subsets of the enum that models downstream use, written as a mapping "
        "of name to members (e.g. the order statuses that count as revenue); kept as "
        "(name, members) pairs.",
    )
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    max_length: int | None = Field(default=None, gt=0)
    path: str | None = Field(
        default=None,
        description="JSON path inside the record (JSON sources only); defaults to $.<name>.",
    )
    unique: bool = Field(
        default=False, description="No value belongs to two different primary keys."
    )

    _name_ok = field_validator("name")(_check_identifier)

    @field_validator("name")
    @classmethod
    def _name_not_reserved(cls, value: str) -> str:
        if is_reserved(value):
            raise ValueError(f"{value!r} is reserved for the lake's own columns")
        return value

    @field_validator("enum_subsets", mode="before")
    @classmethod
    def _subsets_as_pairs(cls, value: object) -> object:
        return tuple(value.items()) if isinstance(value, dict) else value

    @field_validator("type")
    @classmethod
    def _type_known(cls, value: str) -> str:
        value = value.replace(" ", "").lower()
        if value in _SIMPLE_TYPES:
            return value
        match = _DECIMAL.match(value)
        if match and 0 < int(match.group(2)) <= int(match.group(1)) <= 38:
            return value
        raise ValueError(
            f"unknown type {value!r}; use one of {', '.join(_SIMPLE_TYPES)} or decimal(p,s)"
        )

    @model_validator(mode="after")
    def _rules_fit_type(self) -> Column:
        numeric = self.type in ("bigint", "integer", "double") or self.type.startswith("decimal")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min/max only apply to numeric columns, not {self.type}")
        if (self.regex or self.max_length or self.enum) and self.type != "varchar":
            raise ValueError("regex, max_length and enum only apply to varchar columns")
        if self.enum is not None and len(set(self.enum)) != len(self.enum):
            raise ValueError(f"enum of column {self.name} lists a member twice")
        for subset, members in self.enum_subsets:
            _check_identifier(subset)
            if self.enum is None:
                raise ValueError(f"enum_subsets of column {self.name} need an enum")
            unknown = [m for m in members if m not in self.enum]
            if not members or unknown or len(set(members)) != len(members):
                raise ValueError(
                    f"enum subset {subset!r} of column {self.name} must list distinct members "
                    f"of its enum (unknown: {unknown})"
                )
        subset_names = [name for name, _ in self.enum_subsets]
        if len(set(subset_names)) != len(subset_names):
            raise ValueError(f"enum_subsets of column {self.name} name a subset twice")
        if self.regex is not None and (problem := re2_problem(self.regex)) is not None:
            raise ValueError(
                f"regex of column {self.name} is not valid for RE2, the engine that runs it "
                f"(DuckDB): {problem}"
            )
        return self

    def enum_subset(self, name: str) -> tuple[str, ...]:
        """The members of the enum subset called ``name``, as the contract lists them."""
        for subset, members in self.enum_subsets:
            if subset == name:
                return members
        raise KeyError(f"column {self.name} has no enum subset {name!r}")

    @property
    def sql_type(self) -> str:
        """The DuckDB type a valid value is cast to."""
        return {"json": "VARCHAR"}.get(self.type, self.type.upper())

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow (and so Delta) type of the column in the raw table."""
        match = _DECIMAL.match(self.type)
        if match:
            return pa.decimal128(int(match.group(1)), int(match.group(2)))
        return {
            "bigint": pa.int64(),
            "integer": pa.int32(),
            "double": pa.float64(),
            "varchar": pa.string(),
            "json": pa.string(),
            "boolean": pa.bool_(),
            "date": pa.date32(),
            "timestamp": pa.timestamp("us"),
        }[self.type]


def _not_below(high: str, low: str) -> Any:
    """A model validator of a warn/fail pair: field ``high`` must not be below field ``low``."""

    @model_validator(mode="after")
    def check(model: BaseModel) -> BaseModel:
        if getattr(model, high) < getattr(model, low):
            raise ValueError(f"{high} must not be below {low}")
        return model

    return check


class Freshness(BaseModel):
    """How stale the raw table may get before the SLA warns, then fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_after_minutes: int = Field(gt=0)
    fail_after_minutes: int = Field(gt=0)

    _fail_after_warn = _not_below("fail_after_minutes", "warn_after_minutes")


class RejectRate(BaseModel):
    """Share of a batch's records that may go to the dead-letter table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_above: float = Field(ge=0, le=1)
    fail_above: float = Field(ge=0, le=1)

    _fail_above_warn = _not_below("fail_above", "warn_above")


class Volume(BaseModel):
    """Records expected in one batch (one file, one extraction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rows: int = Field(default=0, ge=0)
    max_rows: int | None = Field(default=None, gt=0)


class Maintenance(BaseModel):
    """How lake maintenance compacts the source's raw table (defaults: lib/maintenance.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_file_size: int | None = Field(default=None, ge=1 << 20, le=1 << 34)
    z_order_by: tuple[str, ...] = ()


class PostgresSource(BaseModel):
    """Where a PostgreSQL-fed source lives in the operational database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_name: str = Field(default="public", alias="schema")
    table: str

    _names_ok = field_validator("schema_name", "table")(_check_identifier)


_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class KafkaSource(BaseModel):
    """The Kafka topic a streaming source is read from (JSON messages, one record each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str

    @field_validator("topic")
    @classmethod
    def _topic_ok(cls, value: str) -> str:
        if not _TOPIC.match(value) or value in (".", ".."):
            raise ValueError(f"{value!r} is not a valid Kafka topic name ([A-Za-z0-9._-], <= 249)")
        return value


Channel = Literal["files", "postgres", "kafka"]


class Contract(BaseModel):
    """The contract of one source: what its records look like and how they are keyed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    semver: str = Field(
        pattern=r"^[1-9][0-9]*\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$",
        description="The contract's version (ODCS ``version``), MAJOR.MINOR.PATCH, MAJOR >= 1.",
    )
    owner: str = Field(description="E-mail of the owning team (its member with role owner).")
    team: str
    description: str
    format: Literal["csv", "jsonl", "parquet"]
    primary_key: tuple[str, ...] = Field(min_length=1)
    partition_by: str = Field(
        description="Timestamp or date column whose date partitions the table."
    )
    partition_granularity: Literal["day", "month", "year"] = Field(
        default="day",
        description="Partition per day, month or year of partition_by. Coarser for tables whose "
        "rows spread over years (dimensions): each partition is one file per write.",
    )
    update_time: str | None = None
    columns: tuple[Column, ...] = Field(min_length=1)
    freshness: Freshness
    reject_rate: RejectRate
    expected_volume: Volume = Volume()
    maintenance: Maintenance = Maintenance()
    channels: tuple[Channel, ...] = Field(
        default=("files",),
        min_length=1,
        description="How records arrive; every channel feeds the one raw table of the source.",
    )
    postgres: PostgresSource | None = None
    kafka: KafkaSource | None = None

    _name_ok = field_validator("name")(_check_identifier)

    @model_validator(mode="after")
    def _references_exist(self) -> Contract:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate column names: {duplicates}")
        for field in ("partition_by", "update_time"):
            ref = getattr(self, field)
            if ref is not None and ref not in names:
                raise ValueError(f"{field} names unknown column {ref!r}")
        for ref in self.maintenance.z_order_by:
            if ref not in names:
                raise ValueError(f"maintenance.z_order_by names unknown column {ref!r}")
        for key in self.primary_key:
            if key not in names:
                raise ValueError(f"primary_key names unknown column {key!r}")
            if not self.column(key).required:
                raise ValueError(f"primary key column {key!r} must be required")
        if self.column(self.partition_by).type not in ("date", "timestamp"):
            raise ValueError("partition_by must name a date or timestamp column")
        if "postgres" in self.channels and (self.postgres is None or self.update_time is None):
            raise ValueError("a postgres channel needs a postgres section and update_time")
        if "kafka" in self.channels and (self.kafka is None or self.format != "jsonl"):
            raise ValueError("a kafka channel needs a kafka section and format jsonl")
        return self

    @property
    def version(self) -> int:
        """The major version: recorded with each dead letter (a new major breaks readers)."""
        return int(self.semver.split(".")[0])

    def partition_dates(self, values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
        """The partition date of each ``partition_by`` value: its day, month or year start."""
        dates = pc.cast(values, pa.date32())
        if self.partition_granularity == "day":
            return dates
        return pc.cast(pc.floor_temporal(dates, unit=self.partition_granularity), pa.date32())

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def enum(self, column: str, subset: str | None = None) -> tuple[str, ...]:
        """The enum of ``column`` (or its subset called ``subset``), as the contract lists it.

        The one way code outside the contracts names enum members: nothing else writes them.
        """
        col = self.column(column)
        if col.enum is None:
            raise KeyError(f"column {self.name}.{column} has no enum")
        return col.enum if subset is None else col.enum_subset(subset)

    @property
    def input_columns(self) -> tuple[Column, ...]:
        """Columns read from the record as such (not extracted from a JSON path)."""
        return tuple(c for c in self.columns if c.path is None)

    @property
    def required_input_columns(self) -> tuple[str, ...]:
        """Columns that a file must have in its header (or a JSON record among its keys)."""
        return tuple(c.name for c in self.input_columns if c.required)


# ------------------------------------------------------------------ ODCS document -> typed view

LOGICAL_TYPES: dict[str, str] = {
    "bigint": "integer",
    "integer": "integer",
    "double": "number",
    "decimal": "number",
    "varchar": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "json": "object",
}
"""The ODCS ``logicalType`` of each of our physical types (``decimal(p,s)`` by its base)."""
_TYPE_OPTIONS = {"minimum": "min", "maximum": "max", "maxLength": "max_length"}
"""The ``logicalTypeOptions`` this project enforces, by the typed view's field."""
_MINUTES = {
    **dict.fromkeys(("min", "minute", "minutes"), 1),
    **dict.fromkeys(("h", "hour", "hours"), 60),
    **dict.fromkeys(("d", "day", "days"), 24 * 60),
}
"""Minutes per ``unit`` of the freshness SLA."""
LAKE_PATH = "${LAKE_URI}/raw/{name}"
"""The ``path`` of a source's lake server (``format: delta``): its raw Delta table."""
LANDING_PATH = "${DATA_DIR}/landing/{name}"
"""The ``path`` of a source's landing server: the folder its files are dropped in."""

_Loc = tuple[str | int, ...]
"""A location in a document: keys and list indexes (see :func:`field_path`)."""


def logical_type(physical: str) -> str:
    """The ODCS logicalType that goes with one of our physical types."""
    return LOGICAL_TYPES.get(physical.replace(" ", "").lower().split("(")[0], "")


def _custom(entries: Any, where: _Loc, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        return custom_properties(entries, field_path((*where, "customProperties")), allowed)
    except ValueError as exc:
        where_, _, message = str(exc).partition(": ")
        raise FieldProblem(where_, message) from exc


def _regex(rule: DataQuality, where: _Loc) -> str:
    """The RE2 pattern of a property-level rule ``invalidValues`` with ``arguments.pattern``."""
    arguments = rule.arguments or {}
    pattern = arguments.get("pattern")
    if (
        rule.metric != "invalidValues"
        or not isinstance(pattern, str)
        or set(arguments) != {"pattern"}
        or rule.mustBe != 0
    ):
        raise FieldProblem(
            where,
            "this project runs one property-level quality rule: metric invalidValues, "
            "arguments {pattern: <RE2 regex>}, mustBe 0 (a record that breaks it is rejected)",
        )
    return pattern


def _column(
    prop: SchemaProperty, where: _Loc, loc: dict[_Loc, _Loc]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The typed view's column from one ODCS property, and the property's custom properties;
    ``loc`` learns where each field was found."""
    column: dict[str, Any] = {"name": prop.name, "description": prop.description}
    loc |= {("name",): (*where, "name"), ("description",): (*where, "description")}
    column["type"] = prop.physicalType
    loc[("type",)] = (*where, "physicalType")
    expected = logical_type(prop.physicalType or "")
    if expected and prop.logicalType != expected:  # (an unknown physicalType is named below)
        raise FieldProblem((*where, "logicalType"), f"must be {expected} for {prop.physicalType}")
    for flag in ("required", "unique"):
        column[flag] = bool(getattr(prop, flag))
        loc[(flag,)] = (*where, flag)
    if prop.enum is not None:
        column["enum"] = [entry.value for entry in prop.enum]
        loc[("enum",)] = (*where, "enum")
    for option, value in (prop.logicalTypeOptions or {}).items():
        if option not in _TYPE_OPTIONS:
            raise FieldProblem(
                (*where, "logicalTypeOptions", option),
                f"not enforced by this project (it enforces {', '.join(_TYPE_OPTIONS)}; "
                "a regex is a quality rule, see the README)",
            )
        column[_TYPE_OPTIONS[option]] = value
        loc[(_TYPE_OPTIONS[option],)] = (*where, "logicalTypeOptions", option)
    for index, rule in enumerate(prop.quality or ()):
        if "regex" in column:
            raise FieldProblem((*where, "quality", index), "a property takes one regex rule")
        column["regex"] = _regex(rule, (*where, "quality", index))
        loc[("regex",)] = (*where, "quality", index, "arguments", "pattern")
    allowed = ("enumSubsets", "jsonPath", *(("partitionGranularity",) if prop.partitioned else ()))
    custom = _custom(prop.customProperties, where, allowed)
    for key, field in (("enumSubsets", "enum_subsets"), ("jsonPath", "path")):
        if key in custom:
            column[field] = custom[key]
            loc[(field,)] = (*where, "customProperties", key)
    return column, custom


def _keys(props: list[SchemaProperty], where: _Loc) -> tuple[list[str], list[str]]:
    """Names of the primary key (by primaryKeyPosition) and of the partitioned properties."""
    keyed = [(p.primaryKeyPosition, i, p) for i, p in enumerate(props) if p.primaryKey]
    for position, index, prop in keyed:
        if len(keyed) > 1 and (position is None or position < 1):
            raise FieldProblem(
                (*where, index, "primaryKeyPosition"),
                f"{prop.name} is one of several primary key properties: give its position (1..)",
            )
    if not keyed:
        raise FieldProblem(where, "no property has primaryKey: true (a source has a primary key)")
    positions = [position or 0 for position, _, _ in keyed]  # given for each when several
    if len(keyed) > 1 and sorted(positions) != list(range(1, len(keyed) + 1)):
        raise FieldProblem(where, f"primaryKeyPosition values {positions} must be 1..{len(keyed)}")
    primary_key = [str(p.name) for _, _, p in sorted(keyed, key=lambda k: (k[0] or 0, k[1]))]
    partitioned = [(i, p) for i, p in enumerate(props) if p.partitioned]
    for index, prop in partitioned:
        if prop.partitionKeyPosition not in (None, 1):
            raise FieldProblem(
                (*where, index, "partitionKeyPosition"), "must be 1 (one partition key)"
            )
    return primary_key, [str(p.name) for _, p in partitioned]


def _table(obj: SchemaObject, where: _Loc, loc: dict[_Loc, _Loc]) -> dict[str, Any]:
    """The typed view's table-level fields from the one schema object."""
    props = obj.properties or []
    if not props:
        raise FieldProblem((*where, "properties"), "a source has at least one property")
    fields: dict[str, Any] = {"description": obj.description}
    loc[("description",)] = (*where, "description")
    columns, customs = [], []
    for index, prop in enumerate(props):
        column_loc: dict[_Loc, _Loc] = {}
        column, custom = _column(prop, (*where, "properties", index), column_loc)
        columns.append(column)
        customs.append(custom)
        loc[("columns", index)] = (*where, "properties", index)
        loc |= {("columns", index, *k): v for k, v in column_loc.items()}
    fields["columns"] = columns
    primary_key, partitioned = _keys(props, (*where, "properties"))
    fields["primary_key"] = primary_key
    loc[("primary_key",)] = (*where, "properties")
    if len(partitioned) != 1:
        raise FieldProblem(
            (*where, "properties"),
            f"exactly one property must be partitioned: true (found {partitioned or 'none'})",
        )
    fields["partition_by"] = partitioned[0]
    index = [p.name for p in props].index(partitioned[0])
    if "partitionGranularity" in customs[index]:
        fields["partition_granularity"] = customs[index]["partitionGranularity"]
        loc[("partition_granularity",)] = (
            *where,
            "properties",
            index,
            "customProperties",
            "partitionGranularity",
        )
    custom = _custom(obj.customProperties, where, ("rejectRate", "updateTime", "maintenance"))
    upkeep = custom.get("maintenance")
    if upkeep is not None:
        names = {"targetFileSize": "target_file_size", "zOrderBy": "z_order_by"}
        fields["maintenance"] = (
            {names.get(k, k): v for k, v in upkeep.items()}
            if isinstance(upkeep, Mapping)
            else upkeep
        )
        loc[("maintenance",)] = (*where, "customProperties", "maintenance")
    if "updateTime" in custom:
        fields["update_time"] = custom["updateTime"]
        loc[("update_time",)] = (*where, "customProperties", "updateTime")
    rate = custom.get("rejectRate")
    names = {"warnAbove": "warn_above", "failAbove": "fail_above"}  # others: refused as extra
    fields["reject_rate"] = (
        {names.get(k, k): v for k, v in rate.items()} if isinstance(rate, Mapping) else rate
    )
    loc[("reject_rate",)] = (*where, "customProperties", "rejectRate")
    for index, rule in enumerate(obj.quality or ()):
        if "expected_volume" in fields:
            raise FieldProblem((*where, "quality", index), "a source takes one rowCount rule")
        fields["expected_volume"] = _volume(rule, (*where, "quality", index))
        loc[("expected_volume",)] = (*where, "quality", index)
    return fields


def _volume(rule: DataQuality, where: _Loc) -> dict[str, Any]:
    """The batch volume of a schema-level rule ``rowCount`` with ``arguments.scope: batch``."""
    if rule.metric == "rowCount" and rule.arguments == {"scope": "batch"}:
        if rule.mustBeGreaterOrEqualTo is not None:
            return {"min_rows": rule.mustBeGreaterOrEqualTo}
        if rule.mustBeBetween is not None:
            return {"min_rows": rule.mustBeBetween[0], "max_rows": rule.mustBeBetween[1]}
    raise FieldProblem(
        where,
        "this project runs one schema-level quality rule: metric rowCount, arguments "
        "{scope: batch}, mustBeGreaterOrEqualTo <n> or mustBeBetween [<min>, <max>]",
    )


def _freshness(document: OpenDataContractStandard, loc: dict[_Loc, _Loc]) -> dict[str, Any]:
    """warn/fail minutes from the one ``freshness`` SLA: ``value`` warns, ``valueExt`` fails."""
    found: dict[str, Any] = {}
    for index, sla in enumerate(document.slaProperties or ()):
        where: _Loc = ("slaProperties", index)
        if sla.property != "freshness" or found:
            raise FieldProblem(where, "this project reads one slaProperties entry: freshness")
        factor = _MINUTES.get(sla.unit or "")
        if factor is None:
            raise FieldProblem((*where, "unit"), f"use one of {', '.join(_MINUTES)}")
        for field, key in (("value", "warn_after_minutes"), ("valueExt", "fail_after_minutes")):
            value = getattr(sla, field)
            if value is not None:
                found[key] = value * factor if isinstance(value, int | float) else value
            loc[("freshness", key)] = (*where, field)
        loc[("freshness",)] = where
    return found


def _servers(
    document: OpenDataContractStandard, name: str, loc: dict[_Loc, _Loc]
) -> dict[str, Any]:
    """Channels (in server order), landing format and service sections from ``servers``."""
    fields: dict[str, Any] = {"channels": []}
    lake = 0
    for index, server in enumerate(document.servers or ()):
        where: _Loc = ("servers", index)
        channel, section = _server(server, name, where)
        if channel == "lake":
            lake += 1
            continue
        if channel in fields["channels"]:
            raise FieldProblem(where, f"a second {channel} server (one per channel)")
        fields["channels"].append(channel)
        loc[("channels",)] = ("servers",)
        if channel == "files":
            fields["format"] = server.format
            loc[("format",)] = (*where, "format")
        else:
            fields[channel] = section
            loc[(channel,)] = where
            loc |= {(channel, k): (*where, *v) for k, v in _SECTION_FIELDS[channel].items()}
    if lake != 1:
        lake_path = LAKE_PATH.replace("{name}", name)
        raise FieldProblem(("servers",), f"one server with format delta and path {lake_path}")
    if "format" not in fields and "kafka" in fields["channels"]:
        fields["format"] = "jsonl"  # Kafka messages are JSON, one record each
    return fields


_SECTION_FIELDS: dict[str, dict[str, _Loc]] = {
    "postgres": {"schema_name": ("schema",), "table": ("customProperties", "table")},
    "kafka": {"topic": ("customProperties", "topic")},
}


def _server(server: Server, name: str, where: _Loc) -> tuple[str, dict[str, Any]]:
    """(channel or "lake", the service section) of one server."""
    if server.type == "local":
        lake = server.format == "delta"
        expected = (LAKE_PATH if lake else LANDING_PATH).replace("{name}", name)
        if server.path != expected:
            raise FieldProblem((*where, "path"), f"must be {expected} (the project's layout)")
        _custom(server.customProperties, where, ())
        return ("lake" if lake else "files"), {}
    if server.type == "postgres":
        custom = _custom(server.customProperties, where, ("table",))
        return "postgres", {"schema": server.schema_} | custom
    if server.type == "kafka":
        return "kafka", _custom(server.customProperties, where, ("topic",))
    raise FieldProblem(
        (*where, "type"),
        f"{server.type!r}: a source is read from local (landing; delta: the lake), postgres or "
        "kafka servers",
    )


def _owner(document: OpenDataContractStandard) -> tuple[str | None, str | None]:
    """(owner e-mail, team name): the team's one member with role owner."""
    team = document.team
    if team is None or isinstance(team, list):
        raise FieldProblem(("team",), "give the team as an object with name and members")
    owners = [m.username for m in team.members or () if m.role == "owner"]
    if len(owners) != 1:
        raise FieldProblem(("team", "members"), "exactly one member has role: owner")
    return owners[0], team.name


def _typed_fields(
    document: OpenDataContractStandard,
) -> tuple[dict[str, Any], dict[_Loc, _Loc]]:
    """The typed view's fields, and where in the document each one was found."""
    loc: dict[_Loc, _Loc] = {("name",): ("name",), ("semver",): ("version",)}
    if not document.schema_ or len(document.schema_) != 1:
        raise FieldProblem(("schema",), "a source contract describes exactly one schema object")
    (table,) = document.schema_
    if table.name != document.name:
        raise FieldProblem(("schema", 0, "name"), f"must be the contract's name {document.name!r}")
    _custom(document.customProperties, (), ())
    owner, team = _owner(document)
    loc |= {("owner",): ("team", "members"), ("team",): ("team", "name")}
    fields: dict[str, Any] = {"name": document.name, "semver": document.version}
    fields |= {"owner": owner, "team": team}
    fields |= _table(table, ("schema", 0), loc)
    fields["freshness"] = _freshness(document, loc)
    fields |= _servers(document, str(document.name), loc)
    return fields, loc


def _where(loc: Mapping[_Loc, _Loc], typed: tuple[Any, ...]) -> str:
    """The document's field path for the typed view's ``typed`` location (longest prefix)."""
    for end in range(len(typed), 0, -1):
        if typed[:end] in loc:
            return field_path((*loc[typed[:end]], *typed[end:]))
    return field_path(())


def contract_from_document(document: OpenDataContractStandard, path: Path) -> Contract:
    """The typed view of an ODCS source contract; errors name ``path`` and the ODCS field.

    ODCS → typed view: ``name`` → name; ``version`` → semver (``version`` = its major);
    ``team`` (its member with role owner) → owner; the one ``schema`` object: description,
    ``properties`` → columns (physicalType → type, logicalType checked against it, required,
    unique, enum, logicalTypeOptions minimum/maximum/maxLength → min/max/max_length,
    ``quality`` invalidValues pattern → regex, customProperties enumSubsets/jsonPath),
    primaryKey(+Position) → primary_key, partitioned → partition_by (customProperty
    partitionGranularity), customProperties rejectRate/updateTime, ``quality`` rowCount
    (scope batch) → expected_volume; ``slaProperties`` freshness → freshness; ``servers`` →
    channels (local: files; postgres; kafka; local with format delta: the lake), format and
    the postgres/kafka sections.
    """
    try:
        fields, loc = _typed_fields(document)
    except FieldProblem as exc:
        raise ContractError(f"contract {path}: {exc}") from exc
    try:
        return Contract.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(loc, err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ContractError(f"contract {path}: {problems}") from exc


def contract_path(name: str, directory: Path = CONTRACTS_DIR) -> Path:
    """The file of ``name``'s contract."""
    return directory / f"{name}{CONTRACT_SUFFIX}"


@cache
def load_contract(name: str, directory: Path = CONTRACTS_DIR) -> Contract:
    """Load and validate ``<directory>/<name>.odcs.yaml``; errors name the file and the field."""
    path = contract_path(name, directory)
    contract = contract_from_document(load_document(path), path)
    if contract.name != name:
        raise ContractError(f"contract {path}: name {contract.name!r} differs from the file name")
    return contract


def source_names(directory: Path = CONTRACTS_DIR) -> tuple[str, ...]:
    """Names of all sources that have a contract, sorted."""
    return tuple(
        sorted(p.name.removesuffix(CONTRACT_SUFFIX) for p in directory.glob(f"*{CONTRACT_SUFFIX}"))
    )
