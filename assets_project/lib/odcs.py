"""Open Data Contract Standard (ODCS v3) documents: loading, validation, custom properties.

Every contract under ``assets_project/contracts/`` is an ODCS v3 document
(``<layer>/<table>.odcs.yaml``). :func:`load_document` reads one, validates it against the
official JSON Schema shipped in the ``open-data-contract-standard`` package and returns the
package's pydantic model; any failure is a :class:`ContractError` that names the file and the
field path (``schema[0].properties[2].physicalType``).

What ODCS has no field for lives in ``customProperties`` (a list of ``{property, value}``
entries). :data:`CUSTOM_PROPERTIES` is the one table of the names this project reads, where
each may appear and what it means; :func:`custom_properties` turns such a list into a mapping
and refuses names that are not in the table (a typo must not be silently ignored).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft201909Validator
from open_data_contract_standard.model import CustomProperty, OpenDataContractStandard
from pydantic import ValidationError

ODCS_API_VERSION = "v3.2.0"
"""The ``apiVersion`` this project writes (the newest one the installed package validates)."""


class ContractError(ValueError):
    """A contract file is missing, unreadable or breaks the contract schema."""


@dataclass(frozen=True)
class CustomPropertyDoc:
    """One custom property name: where it may appear and what it means."""

    where: str
    meaning: str


# The one place our custom property names are written with their meaning (README and `contracts
# show` print this table). Keys are the ``property`` of an ODCS ``customProperties`` entry.
CUSTOM_PROPERTIES: dict[str, CustomPropertyDoc] = {
    "rejectRate": CustomPropertyDoc(
        "schema object",
        "{warnAbove, failAbove}: share (0..1) of a batch's records that may go to the "
        "dead-letter table before the reject_rate_warning check warns, then the reject_rate "
        "check fails.",
    ),
    "maintenance": CustomPropertyDoc(
        "schema object",
        "{targetFileSize, zOrderBy}: bytes a compacted file of the raw table aims at (default "
        "128 MiB) and the columns the weekly maintenance z-orders it on (default none).",
    ),
    "updateTime": CustomPropertyDoc(
        "schema object",
        "Name of the timestamp property that orders the versions of one key (the newest "
        "version wins in staging); PostgreSQL extraction reads incrementally by it.",
    ),
    "partitionGranularity": CustomPropertyDoc(
        "the partitioned property",
        "day, month or year: the raw Delta table is partitioned by this period of the "
        "partitioned property (default day; coarser for tables whose rows spread over years).",
    ),
    "enumSubsets": CustomPropertyDoc(
        "property with an enum",
        "{name: [members]}: named subsets of the enum that models downstream use (e.g. the "
        "order statuses that count as revenue).",
    ),
    "jsonPath": CustomPropertyDoc(
        "property (JSON sources)",
        "JSON path inside the record the value is taken from (default $.<name>); such a "
        "property is extracted, not read as a field of its own.",
    ),
    "table": CustomPropertyDoc(
        "postgres server", "Table the source is extracted from (in the server's schema)."
    ),
    "topic": CustomPropertyDoc("kafka server", "Topic the source's JSON messages are read from."),
    "enumFrom": CustomPropertyDoc(
        "mart property",
        "'<source>.<column>' or '<source>.<column>.<subset>': the allowed values are that source "
        "contract column's enum (or its subset so named), written once, in the source contract.",
    ),
    "severity": CustomPropertyDoc(
        "mart relationship",
        "'error' (default) or 'warning': 'warning' when a row may reference a dimension member "
        "that has not landed yet.",
    ),
}


def field_path(parts: Iterable[str | int]) -> str:
    """``('schema', 0, 'properties', 2, 'name')`` as ``schema[0].properties[2].name``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "<root>"


class FieldProblem(ValueError):
    """A fact of a document a typed view cannot take, at ``where`` (an ODCS field path)."""

    def __init__(self, where: Iterable[str | int] | str, message: str) -> None:
        super().__init__(f"{where if isinstance(where, str) else field_path(where)}: {message}")


class _Loader(yaml.SafeLoader):
    """YAML as JSON sees it: dates and times stay strings (JSON Schema has no date type)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@cache
def json_schema() -> dict[str, Any]:
    """The official ODCS JSON Schema shipped in the ``open-data-contract-standard`` package."""
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft201909Validator:
    return Draft201909Validator(json_schema())


def schema_problems(document: object) -> list[str]:
    """Where ``document`` breaks the ODCS JSON Schema: ``field path: message`` lines."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.path)))
    paths = [field_path(e.absolute_path) for e in errors]
    return [
        f"{path}: {_shorten(error.message)}"
        for path, error in zip(paths, errors, strict=True)
        # "Unevaluated properties" repeats (or blurs) what another error at the path says.
        if error.validator != "unevaluatedProperties" or paths.count(path) == 1
    ]


def _shorten(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in the YAML file at ``path`` (dates kept as text); ContractError otherwise."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"contract {path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"contract {path}: top level must be a mapping")
    return raw


def parse_document(raw: dict[str, Any], path: Path) -> OpenDataContractStandard:
    """``raw`` validated against the ODCS JSON Schema, as the package's pydantic model."""
    problems = schema_problems(raw)
    if problems:
        raise ContractError(f"contract {path}: " + "; ".join(problems))
    try:
        return OpenDataContractStandard.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ContractError(f"contract {path}: " + "; ".join(problems)) from exc


def load_document(path: Path) -> OpenDataContractStandard:
    """Read, validate (official JSON Schema) and parse the ODCS document at ``path``."""
    return parse_document(read_yaml(path), path)


def custom_properties(
    entries: Sequence[CustomProperty] | None, where: str, allowed: Iterable[str]
) -> dict[str, Any]:
    """``customProperties`` as ``{property: value}``.

    Names outside :data:`CUSTOM_PROPERTIES`, or not ``allowed`` at this place, are refused
    with a ``ValueError`` that starts with the entry's field path (``where`` is the list's).
    """
    allowed = tuple(allowed)
    found: dict[str, Any] = {}
    for index, entry in enumerate(entries or ()):
        name = entry.property or ""
        if name not in allowed:
            known = "unknown" if name not in CUSTOM_PROPERTIES else "not allowed here"
            raise ValueError(
                f"{where}[{index}].property: custom property {name!r} is {known}; here this "
                f"project reads {', '.join(allowed) or 'none'}"
            )
        if name in found:
            raise ValueError(f"{where}[{index}].property: {name!r} is given twice")
        found[name] = entry.value
    return found
