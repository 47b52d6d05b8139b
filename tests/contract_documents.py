"""Edit copies of the shipped ODCS source contracts, for tests that need a changed contract.

The tests change a document as data (a dict), write it next to nothing else in a temporary
folder and load it with ``load_contract(name, folder)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from assets_project.lib.contracts import Contract, contract_path, load_contract
from assets_project.lib.odcs import read_yaml


def document(name: str) -> dict[str, Any]:
    """The shipped contract of ``name`` as data."""
    return read_yaml(contract_path(name))


def table(doc: dict[str, Any]) -> dict[str, Any]:
    """The document's one schema object."""
    (obj,) = doc["schema"]
    return obj


def prop(doc: dict[str, Any], column: str) -> dict[str, Any]:
    """The property (column) called ``column``."""
    (found,) = [p for p in table(doc)["properties"] if p["name"] == column]
    return found


def set_custom(element: dict[str, Any], name: str, value: Any) -> None:
    """Set (or, with ``value`` None, remove) the custom property ``name`` of ``element``."""
    entries = [e for e in element.get("customProperties", []) if e["property"] != name]
    if value is not None:
        entries.append({"property": name, "value": value})
    element["customProperties"] = entries


def server(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """The server of type ``kind`` (``local`` means the landing folder, not the lake)."""
    (found,) = [s for s in doc["servers"] if s["type"] == kind and s.get("format") != "delta"]
    return found


def write(directory: Path, name: str, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as ``name``'s contract in ``directory``; returns ``directory``."""
    contract_path(name, directory).write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


def changed(name: str, directory: Path, doc: dict[str, Any]) -> Contract:
    """``doc`` written to ``directory`` and loaded as ``name``'s contract."""
    return load_contract(name, write(directory, name, doc))
