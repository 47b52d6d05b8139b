"""Open Data Contract Standard (ODCS v3) documents: read, validate, parse.

:func:`load_document` reads one contract file, validates it against the official JSON Schema
shipped in the ``open-data-contract-standard`` package and returns the package's pydantic
model; any failure is a :class:`~assets_project.lib.contracts.ContractError` naming the file
and the field path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from jsonschema import Draft201909Validator
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError

from assets_project.lib.contracts import ContractError


@cache
def _validator() -> Draft201909Validator:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    return Draft201909Validator(json.loads(text))


def _field(parts: Iterable[object]) -> str:
    """``('schema', 0, 'name')`` as ``schema[0].name``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def load_document(path: Path) -> OpenDataContractStandard:
    """Read, validate (official JSON Schema) and parse the ODCS document at ``path``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"contract {path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"contract {path}: top level must be a mapping")
    errors = sorted(_validator().iter_errors(raw), key=lambda e: list(map(str, e.path)))
    if errors:
        problems = "; ".join(f"{_field(e.absolute_path)}: {e.message[:300]}" for e in errors)
        raise ContractError(f"contract {path}: {problems}")
    try:
        return OpenDataContractStandard.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"contract {path}: {problems}") from exc
