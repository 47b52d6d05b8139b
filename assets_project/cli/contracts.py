"""``python -m assets_project contracts lint|show|export|generate``: the contracts as a tool.

- ``lint``: every contract under ``assets_project/contracts/`` against the official ODCS JSON
  Schema, then against this project's typed view of its layer; exit 1 naming file and field.
- ``show <table>``: a readable summary of a table's contract.
- ``export <table> --format odcs|json-schema``: the contract as a normalized ODCS document, or
  a JSON Schema of the table's records (columns, types, required, enums, ranges) for tools
  that speak JSON Schema rather than ODCS.
- ``generate [--check]``: write every file generated from the contracts (each of
  :data:`GENERATORS`); ``--check`` writes nothing and exits 1 when a file differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from open_data_contract_standard.model import DataQuality, OpenDataContractStandard, SchemaProperty

from assets_project.lib import dbt_marts_yaml, dbt_yaml
from assets_project.lib.contracts import CONTRACT_SUFFIX, CONTRACTS_ROOT, contract_from_document
from assets_project.lib.lake import REPO_ROOT
from assets_project.lib.mart_contracts import mart_contract_from_document
from assets_project.lib.odcs import CUSTOM_PROPERTIES, ContractError, load_document

README = Path("README.md")
_TABLE_START = "<!-- custom-properties:start"
_TABLE_END = "<!-- custom-properties:end -->"


def readme_files() -> dict[Path, str]:
    """README.md with its custom property table rendered from ``CUSTOM_PROPERTIES``.

    Only the lines between the two markers are generated; nothing when the README (or a
    marker) is absent, e.g. in an installed package.
    """
    path = REPO_ROOT / README
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    start, end = text.find(_TABLE_START), text.find(_TABLE_END)
    if start < 0 or end < start:
        return {}
    start = text.index("\n", start) + 1
    rows = [
        f"| `{name}` | {doc.where} | {doc.meaning} |" for name, doc in CUSTOM_PROPERTIES.items()
    ]
    table = "\n".join(["| property | where | meaning |", "| --- | --- | --- |", *rows]) + "\n"
    return {README: text[:start] + table + text[end:]}


GENERATORS: list[Callable[[], dict[Path, str]]] = [
    dbt_yaml.repo_files,
    dbt_marts_yaml.generated_files,
    readme_files,
]
"""Every generator of files from the contracts: text by path relative to the repository."""

TYPED_VIEWS: dict[str, Callable[[OpenDataContractStandard, Path], object]] = {
    "raw": contract_from_document,
    "marts": mart_contract_from_document,
}
"""The typed view that ``lint`` builds for the contracts of each layer (folder)."""

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "timestamp": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "format": "time"},
    "object": {"type": "object"},
    "array": {"type": "array"},
}
_RANGE_OPTIONS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_LENGTH_OPTIONS = ("minLength", "maxLength")


def contract_files(root: Path = CONTRACTS_ROOT) -> list[Path]:
    """Every contract document under ``root``, sorted."""
    return sorted(root.glob(f"*/*{CONTRACT_SUFFIX}"))


def find_contract(table: str, root: Path = CONTRACTS_ROOT) -> Path:
    """The contract file of ``table`` (in any layer); ContractError if none or several."""
    found = [p for p in contract_files(root) if p.name == f"{table}{CONTRACT_SUFFIX}"]
    if len(found) != 1:
        known = ", ".join(p.name.removesuffix(CONTRACT_SUFFIX) for p in contract_files(root))
        raise ContractError(f"no single contract for table {table!r} (tables: {known})")
    return found[0]


def lint(root: Path = CONTRACTS_ROOT) -> list[str]:
    """Problems of every contract under ``root`` (empty: all valid), each naming its file."""
    problems = []
    for path in contract_files(root):
        try:
            document = load_document(path)
            if document.name != path.name.removesuffix(CONTRACT_SUFFIX):
                raise ContractError(f"contract {path}: name: must be the file's name")
            view = TYPED_VIEWS.get(path.parent.name)
            if view is not None:
                view(document, path)
        except ContractError as exc:
            problems.append(str(exc))
    return problems


def _rules(prop: SchemaProperty) -> list[str]:
    """The rules of one property, as short phrases."""
    rules = [flag for flag in ("required", "unique", "partitioned") if getattr(prop, flag)]
    if prop.primaryKey:
        rules.append(f"primary key {prop.primaryKeyPosition or ''}".strip())
    if prop.enum:
        rules.append("one of " + ", ".join(str(e.value) for e in prop.enum))
    rules += [f"{k} {v}" for k, v in (prop.logicalTypeOptions or {}).items()]
    rules += [_quality(rule) for rule in prop.quality or ()]
    rules += [f"{e.property} {json.dumps(e.value)}" for e in prop.customProperties or ()]
    return rules


def _quality(rule: DataQuality) -> str:
    """One quality rule: metric, arguments and its bound."""
    bounds = rule.model_dump(include={"mustBe", "mustBeGreaterOrEqualTo", "mustBeBetween"})
    bound = " ".join(f"{k} {json.dumps(v)}" for k, v in bounds.items() if v is not None)
    arguments = json.dumps(rule.arguments) if rule.arguments else ""
    return " ".join(filter(None, ["quality", rule.metric or rule.type, arguments, bound]))


def show(path: Path) -> str:
    """A readable summary of the contract at ``path``."""
    doc = load_document(path)
    team = doc.team if doc.team is not None and not isinstance(doc.team, list) else None
    owners = [m.username for m in (team.members if team and team.members else []) if m.username]
    lines = [
        f"{doc.name}  version {doc.version}  ({doc.status or 'no status'}, {doc.apiVersion})",
        f"file:   {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}",
        f"team:   {team.name if team else '-'} ({', '.join(owners) or 'no members'})",
    ]
    for server in doc.servers or ():
        where = server.path or server.location or server.host or ""
        custom = " ".join(f"{e.property}={e.value}" for e in server.customProperties or ())
        lines.append(f"server: {server.server} ({server.type}) {where} {custom}".rstrip())
    for sla in doc.slaProperties or ():
        extra = f" / {sla.valueExt}" if sla.valueExt is not None else ""
        lines.append(f"sla:    {sla.property} {sla.value}{extra} {sla.unit or ''}".rstrip())
    for obj in doc.schema_ or ():
        lines += ["", f"{obj.name}: {obj.description or ''}".rstrip()]
        for entry in obj.customProperties or ():
            lines.append(f"  {entry.property}: {json.dumps(entry.value)}")
        lines += [f"  {_quality(rule)}" for rule in obj.quality or ()]
        width = max((len(p.name or "") for p in obj.properties or ()), default=0)
        for prop in obj.properties or ():
            kind = f"{prop.logicalType or '?'}/{prop.physicalType or '?'}"
            lines.append(f"  {prop.name or '':<{width}}  {kind:<22} {prop.description or ''}")
            if rules := _rules(prop):
                lines.append(f"  {'':<{width}}  {'; '.join(rules)}")
    return "\n".join(lines) + "\n"


def _record_property(prop: SchemaProperty) -> dict[str, Any]:
    """JSON Schema of one column's values."""
    schema: dict[str, Any] = dict(_JSON_TYPES.get(prop.logicalType or "", {}))
    if prop.description:
        schema["description"] = prop.description
    options = prop.logicalTypeOptions or {}
    for option in (*_RANGE_OPTIONS, *_LENGTH_OPTIONS):
        if option in options:
            schema[option] = options[option]
    for rule in prop.quality or ():
        pattern = (rule.arguments or {}).get("pattern")
        if rule.metric == "invalidValues" and isinstance(pattern, str):
            schema["pattern"] = pattern
    if prop.enum:
        schema["enum"] = [entry.value for entry in prop.enum]
    if not prop.required and "type" in schema:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if prop.examples:
        schema["examples"] = prop.examples
    return schema


def records_json_schema(path: Path) -> dict[str, Any]:
    """A JSON Schema (2020-12) of one record of the table the contract at ``path`` describes."""
    doc = load_document(path)
    if not doc.schema_ or len(doc.schema_) != 1:
        raise ContractError(f"contract {path}: schema: one schema object expected")
    (obj,) = doc.schema_
    props = obj.properties or []
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:odcs:{doc.id}:{doc.version}",
        "title": f"{doc.name} record (contract {doc.id} version {doc.version})",
        "description": obj.description or "",
        "type": "object",
        "properties": {str(p.name): _record_property(p) for p in props},
        "required": [str(p.name) for p in props if p.required],
    }


def generated(generators: Sequence[Callable[[], dict[Path, str]]] = GENERATORS) -> dict[Path, str]:
    """Every generated file (relative to the repository) with the text the contracts give."""
    files: dict[Path, str] = {}
    for generator in generators:
        files |= generator()
    return files


def stale(root: Path = REPO_ROOT) -> list[Path]:
    """Generated files under ``root`` whose text differs from what the contracts give."""
    return [
        relative
        for relative, text in generated().items()
        if not (root / relative).is_file() or (root / relative).read_text(encoding="utf-8") != text
    ]


def _generate(args: argparse.Namespace) -> int:
    files = generated()
    for relative in stale(args.root):
        if args.check:
            sys.stderr.write(
                f"stale: {relative} (run python -m assets_project contracts generate)\n"
            )
        else:
            (args.root / relative).parent.mkdir(parents=True, exist_ok=True)
            (args.root / relative).write_text(files[relative], encoding="utf-8")
            sys.stdout.write(f"wrote {relative}\n")
    return 1 if args.check and stale(args.root) else 0


def _lint(args: argparse.Namespace) -> int:
    problems = lint(args.contracts_root)
    for problem in problems:
        sys.stderr.write(problem + "\n")
    if not problems:
        sys.stdout.write(f"{len(contract_files(args.contracts_root))} contracts valid\n")
    return 1 if problems else 0


def _show(args: argparse.Namespace) -> int:
    text = show(find_contract(args.table))
    sys.stdout.write(text)
    return 0


def _export(args: argparse.Namespace) -> int:
    path = find_contract(args.table)
    if args.format == "odcs":
        sys.stdout.write(load_document(path).to_yaml())
    else:
        sys.stdout.write(json.dumps(records_json_schema(path), indent=2) + "\n")
    return 0


def _custom_properties_epilog() -> str:
    lines = ["custom properties (customProperties) this project reads:"]
    lines += [f"  {name} ({doc.where}): {doc.meaning}" for name, doc in CUSTOM_PROPERTIES.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``contracts`` command; returns its exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m assets_project contracts",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=_custom_properties_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    lint_parser = commands.add_parser(
        "lint", help="validate every contract (exit 1 naming the field)"
    )
    lint_parser.add_argument(
        "--contracts-root", type=Path, default=CONTRACTS_ROOT, help=argparse.SUPPRESS
    )
    show_parser = commands.add_parser("show", help="a readable summary of a table's contract")
    show_parser.add_argument("table")
    export = commands.add_parser("export", help="the contract as ODCS, or its records' JSON Schema")
    export.add_argument("table")
    export.add_argument("--format", choices=("odcs", "json-schema"), default="odcs")
    generate = commands.add_parser("generate", help="write the files generated from contracts")
    generate.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift")
    generate.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    run = {"lint": _lint, "show": _show, "export": _export, "generate": _generate}[args.command]
    try:
        return run(args)
    except ContractError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
