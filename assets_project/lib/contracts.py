"""Source contracts: one YAML file per source is the single source of truth for its schema.

A contract names the source's columns with their types and rules, its primary key, the column
whose date partitions the raw Delta table and the time column that orders versions of a record.
Everything downstream (validation, Delta schemas, Dagster metadata) is derived from it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"

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


class ContractError(ValueError):
    """A contract file is missing, unreadable or breaks the contract schema."""


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


class Freshness(BaseModel):
    """How stale the raw table may get before the SLA warns, then fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_after_minutes: int = Field(gt=0)
    fail_after_minutes: int = Field(gt=0)

    @model_validator(mode="after")
    def _fail_after_warn(self) -> Freshness:
        if self.fail_after_minutes < self.warn_after_minutes:
            raise ValueError("fail_after_minutes must not be below warn_after_minutes")
        return self


class RejectRate(BaseModel):
    """Share of a batch's records that may go to the dead-letter table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_above: float = Field(ge=0, le=1)
    fail_above: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _fail_above_warn(self) -> RejectRate:
        if self.fail_above < self.warn_above:
            raise ValueError("fail_above must not be below warn_above")
        return self


class Volume(BaseModel):
    """Records expected in one batch (one file, one extraction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rows: int = Field(default=0, ge=0)
    max_rows: int | None = Field(default=None, gt=0)


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
    version: int = Field(ge=1)
    owner: str
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


@cache
def load_contract(name: str, directory: Path = CONTRACTS_DIR) -> Contract:
    """Load and validate ``<directory>/<name>.yml``; errors name the file and the field."""
    path = directory / f"{name}.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"contract {path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"contract {path}: top level must be a mapping")
    try:
        contract = Contract.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ContractError(f"contract {path}: {problems}") from exc
    if contract.name != path.stem:
        raise ContractError(f"contract {path}: name {contract.name!r} differs from the file name")
    return contract


def source_names(directory: Path = CONTRACTS_DIR) -> tuple[str, ...]:
    """Names of all sources that have a contract, sorted."""
    return tuple(sorted(p.stem for p in directory.glob("*.yml")))
