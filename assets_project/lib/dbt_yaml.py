"""The dbt files that repeat source contract facts, generated from the contracts.

Two files of ``dbt_project/`` are written from ``assets_project/contracts/raw/*.odcs.yaml``
and never by hand:

- ``models/staging/_raw__sources.yml``: the ``raw`` source, one table per contract with its
  description, Delta path, freshness SLA (``loaded_at_field`` is the lake's load time
  ``_extracted_at``) and columns (contract columns, then the lake's metadata columns);
- ``macros/contract_values.sql``: every contract enum (and named enum subset) as data, behind
  ``contract_values(source, column, subset=none)`` (a list, e.g. for ``accepted_values``:
  ``values: "{{ contract_values('orders', 'status') }}"``) and ``contract_values_sql(...)``
  (quoted SQL literals for ``in (...)``).

Run ``python -m assets_project contracts generate`` (``make dbt-yaml``) after changing a
contract; ``--check`` only reports files that differ (exit status 1), and a test does the same.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import yaml

from assets_project.lib.contracts import CONTRACTS_DIR, Contract, load_contract, source_names
from assets_project.lib.lake import METADATA_DESCRIPTIONS, REPO_ROOT

DBT_PROJECT = Path("dbt_project")
"""The dbt project, relative to the repository."""
DBT_PROJECT_DIR = REPO_ROOT / DBT_PROJECT
SOURCES_PATH = Path("models/staging/_raw__sources.yml")
MACRO_PATH = Path("macros/contract_values.sql")
DOCS_PATH = Path("models/staging/_contract_docs.md")
RAW_DESCRIPTION = (
    "Append-only raw layer in Delta Lake (one table per source contract); contains exact "
    "duplicates, several versions per key and late-arriving events."
)
LOADED_AT_FIELD = "_extracted_at"
"""The raw tables' load time: dbt's source freshness reads it (the lake writes it per batch)."""
_WIDTH = 100
_COMMAND = "python -m assets_project contracts generate (make dbt-yaml)"


def _reads_back(lines: list[str], key: str, text: str) -> bool:
    try:
        return yaml.safe_load(textwrap.dedent("\n".join(lines))) == {key: text}
    except yaml.YAMLError:
        return False


def _scalar(key: str, text: str, indent: int) -> list[str]:
    """``key: text`` at ``indent``: plain if short, else folded (``>-``), else double-quoted.

    Each form is used only when YAML reads it back as ``text`` exactly.
    """
    pad = " " * indent
    plain = [f"{pad}{key}: {text}"]
    if len(plain[0]) <= _WIDTH and _reads_back(plain, key, text):
        return plain
    body = textwrap.wrap(text, width=_WIDTH - indent - 2, break_long_words=False)
    folded = [f"{pad}{key}: >-", *(f"{pad}  {part}" for part in body)]
    if _reads_back(folded, key, text):
        return folded
    return [f"{pad}{key}: {json.dumps(text, ensure_ascii=False)}"]


def render_sources(contracts: Sequence[Contract]) -> str:
    """The text of ``_raw__sources.yml`` for ``contracts`` (in the order given)."""
    lines = [
        "# Generated from assets_project/contracts/raw/*.odcs.yaml by",
        f"# {_COMMAND}: do not edit by hand.",
        "# Raw Delta Lake tables written by the Python ingestion assets (assets_project/); lake",
        "# metadata column descriptions from METADATA_DESCRIPTIONS in assets_project/lib/lake.py.",
        "# delta_table_path is rendered at parse time: LAKE_URI (a local path or an object-store",
        "# URI), default ../data/lake relative to dbt_project/ (the working directory of dbt).",
        "# as_of_version / as_of_datetime pin a table to an earlier state (unset: the newest).",
        "version: 2",
        "",
        "sources:",
        "  - name: raw",
        *_scalar("description", RAW_DESCRIPTION, 4),
        "    tables:",
    ]
    for contract in contracts:
        path = f"{{{{ env_var('LAKE_URI', '../data/lake').rstrip('/') }}}}/raw/{contract.name}"
        lines += [
            f"      - name: {contract.name}",
            *_scalar("description", contract.description, 8),
            "        meta:",
            "          plugin: delta",
            f'          delta_table_path: "{path}"',
            # Pins (python -m assets_project lake, README "Running the lake"): --vars
            # '{raw_versions: {<table>: <version>}}' or '{raw_as_of: <ISO timestamp>}'.
            f"          as_of_version: \"{{{{ var('raw_versions', {{}}).get('{contract.name}') }}}}\"",
            "          as_of_datetime: \"{{ var('raw_as_of', none) }}\"",
            "        config:",
            f"          loaded_at_field: {LOADED_AT_FIELD}",
            "          freshness:",
            f"            warn_after: {{count: {contract.freshness.warn_after_minutes}, "
            "period: minute}",
            f"            error_after: {{count: {contract.freshness.fail_after_minutes}, "
            "period: minute}",
            "        columns:",
        ]
        described = [(c.name, c.description) for c in contract.columns]
        for name, description in [*described, *METADATA_DESCRIPTIONS.items()]:
            lines += [f"          - name: {name}", *_scalar("description", description, 12)]
    return "\n".join(lines) + "\n"


def _jinja_string(text: str) -> str:
    """``text`` as a single-quoted Jinja string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _jinja_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_jinja_string(v) for v in values) + "]"


def render_macro(contracts: Sequence[Contract]) -> str:
    """The text of ``macros/contract_values.sql``: the enums of ``contracts`` as dbt macros."""
    entries: list[str] = []
    for contract in contracts:
        columns = [c for c in contract.columns if c.enum is not None]
        if not columns:
            continue
        entries.append(f"    {_jinja_string(contract.name)}: {{")
        for column in columns:
            assert column.enum is not None
            entries.append(f"      {_jinja_string(column.name)}: {{")
            entries.append(f"        'enum': {_jinja_list(column.enum)},")
            subsets = [f"{_jinja_string(n)}: {_jinja_list(m)}," for n, m in column.enum_subsets]
            if subsets:
                entries += [
                    "        'subsets': {",
                    *(f"          {s}" for s in subsets),
                    "        },",
                ]
            else:
                entries.append("        'subsets': {},")
            entries.append("      },")
        entries.append("    },")
    body = "\n".join(entries)
    return f"""\
{{#- Generated from assets_project/contracts/raw/*.odcs.yaml by
    {_COMMAND}: do not edit by hand.
    The enums of the contracts (and their named enum_subsets), the one place dbt reads them. -#}}

{{% macro contract_values(source, column, subset=none) %}}
  {{#- The members of contract enum <source>.<column> (or of its named subset), as a list. -#}}
  {{%- set enums = {{
{body}
  }} -%}}
  {{%- set entry = enums.get(source, {{}}).get(column) -%}}
  {{%- if entry is not none and subset is not none -%}}
    {{%- set values = entry['subsets'].get(subset) -%}}
  {{%- elif entry is not none -%}}
    {{%- set values = entry['enum'] -%}}
  {{%- endif -%}}
  {{%- if values is not defined or values is none -%}}
    {{{{ exceptions.raise_compiler_error(
        'contract_values: the contracts define no enum ' ~ source ~ '.' ~ column
        ~ ('' if subset is none else ' subset ' ~ subset)) }}}}
  {{%- endif -%}}
  {{{{ return(values) }}}}
{{% endmacro %}}

{{% macro contract_values_sql(source, column, subset=none) %}}
  {{#- The same members as quoted SQL string literals, for `in (...)`. -#}}
  {{%- set quoted = [] -%}}
  {{%- for value in contract_values(source, column, subset) -%}}
    {{%- do quoted.append("'" ~ value | replace("'", "''") ~ "'") -%}}
  {{%- endfor -%}}
  {{{{ return(quoted | join(', ')) }}}}
{{% endmacro %}}
"""


def doc_name(source: str, column: str) -> str:
    """The dbt docs block of a source contract column: ``{{ doc('raw__<source>__<column>') }}``."""
    return f"raw__{source}__{column}"


def render_docs(contracts: Sequence[Contract]) -> str:
    """One dbt docs block per source contract column, holding the contract's description.

    Models that take a column over from a source describe it with ``{{ doc(...) }}``: the words
    stay in the contract, and dbt (and so Dagster's column schema) shows them.
    """
    lines = [f"{{# {_COMMAND}: do not edit by hand. #}}", ""]
    for contract in contracts:
        for column in contract.columns:
            lines += [
                f"{{% docs {doc_name(contract.name, column.name)} %}}",
                column.description,
                "{% enddocs %}",
                "",
            ]
    return "\n".join(lines)


def generated_files(contracts_dir: Path = CONTRACTS_DIR) -> dict[Path, str]:
    """Each generated file (relative to ``dbt_project/``) with the text the contracts give.

    The contract files are read as they are now (not from ``load_contract``'s cache).
    """
    load = load_contract.__wrapped__
    contracts = [load(name, contracts_dir) for name in source_names(contracts_dir)]
    return {
        SOURCES_PATH: render_sources(contracts),
        MACRO_PATH: render_macro(contracts),
        DOCS_PATH: render_docs(contracts),
    }


def repo_files() -> dict[Path, str]:
    """The generated dbt files, relative to the repository (a ``contracts generate`` step)."""
    return {DBT_PROJECT / relative: text for relative, text in generated_files().items()}
