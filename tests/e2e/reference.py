"""An independent pandas reference of the pipeline, computed straight from the dropped files.

It shares no code with the pipeline: it applies the contracts' rules the ordinary pandas way,
deduplicates and aggregates, so that the marts built through Delta, dbt and DuckDB can be
checked against numbers derived another way.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

CONTRACTS = Path(__file__).resolve().parents[2] / "assets_project" / "contracts"
INTEGER = re.compile(r"^[+-]?[0-9]+$")


def _contract(name: str) -> dict[str, Any]:
    """The ODCS contract's columns read here (not through the pipeline's typed view), each as
    {name, type, required, enum, enum_subsets, min, max, regex, max_length} when given."""
    (table,) = yaml.safe_load((CONTRACTS / "raw" / f"{name}.odcs.yaml").read_text())["schema"]
    columns = []
    for prop in table["properties"]:
        custom = {c["property"]: c["value"] for c in prop.get("customProperties", [])}
        options = prop.get("logicalTypeOptions", {})
        column = {"name": prop["name"], "type": prop["physicalType"]}
        column["required"] = prop.get("required", False)
        if "enum" in prop:
            column["enum"] = [entry["value"] for entry in prop["enum"]]
        if "enumSubsets" in custom:
            column["enum_subsets"] = custom["enumSubsets"]
        for option, key in (("minimum", "min"), ("maximum", "max"), ("maxLength", "max_length")):
            if option in options:
                column[key] = options[option]
        for rule in prop.get("quality", []):
            column["regex"] = rule["arguments"]["pattern"]
        columns.append(column)
    return {"columns": columns}


def _revenue_statuses() -> list[str]:
    """The order statuses that count as revenue: the orders contract's status subset."""
    (status,) = [c for c in _contract("orders")["columns"] if c["name"] == "status"]
    return list(status["enum_subsets"]["revenue"])


def _text(value: Any) -> str | None:
    """A JSON value as DuckDB's json_extract_string shows it (None for null/missing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _timestamp(text: str) -> pd.Timestamp | None:
    value = pd.to_datetime(text.strip(), errors="coerce", utc=True)
    return None if pd.isna(value) else value.tz_convert(None)


def _valid_value(column: dict[str, Any], text: str | None) -> tuple[bool, Any]:
    """(passes every rule, typed value) for one value under one contract column."""
    if text is None or text == "":
        return not column.get("required", False), None
    kind = column["type"]
    value: Any
    if kind in ("bigint", "integer"):
        if not INTEGER.match(text.strip()):
            return False, None
        value = int(text)
    elif kind.startswith("decimal"):
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            return False, None
        if not value.is_finite():
            return False, None
        value = value.quantize(Decimal("0.01"))
    elif kind == "timestamp":
        value = _timestamp(text)
        if value is None:
            return False, None
    elif kind == "date":
        value = pd.to_datetime(text.strip(), format="%Y-%m-%d", errors="coerce")
        if pd.isna(value):
            return False, None
        value = value.date()
    elif kind == "json":
        try:
            json.loads(text)
        except ValueError:
            return False, None
        value = text
    else:
        value = text
    if "enum" in column and value not in column["enum"]:
        return False, None
    if "min" in column and value < column["min"]:
        return False, None
    if "max" in column and value > column["max"]:
        return False, None
    if "regex" in column and not re.fullmatch(column["regex"], value):
        return False, None
    if "max_length" in column and len(value) > column["max_length"]:
        return False, None
    return True, value


def _validate(
    source: str, records: list[tuple[str, int, dict[str, str | None] | None]]
) -> pd.DataFrame:
    contract = _contract(source)
    rows = []
    for file_name, line, record in records:
        if record is None:
            continue
        typed: dict[str, Any] = {"_source": file_name, "_source_line": line}
        ok = True
        for column in contract["columns"]:
            valid, value = _valid_value(column, record.get(column["name"]))
            ok = ok and valid
            typed[column["name"]] = value
        if ok:
            rows.append(typed)
    return pd.DataFrame(rows)


def _csv_records(folder: Path) -> list[tuple[str, int, dict[str, str | None] | None]]:
    records = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            for line, row in enumerate(reader, start=1):
                record = dict(zip(header, row, strict=True)) if len(row) == len(header) else None
                records.append((f"{folder.name}/{path.name}", line, record))
    return records


def _json_records(folder: Path) -> list[tuple[str, int, dict[str, str | None] | None]]:
    records = []
    for path in sorted(folder.glob("*.jsonl")):
        for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            record = None
            if isinstance(document, dict):
                properties = document.get("properties")
                amount = properties.get("amount") if isinstance(properties, dict) else None
                record = {k: _text(v) for k, v in document.items()} | {"amount": _text(amount)}
            records.append((f"{folder.name}/{path.name}", line, record))
    return records


def record_counts(landing: Path) -> dict[str, int]:
    """Records per dropped file (CSV data rows, non-blank JSON lines)."""
    counts: dict[str, int] = {}
    for folder in sorted(p for p in landing.iterdir() if p.is_dir()):
        records = _json_records(folder) if folder.name == "user_events" else _csv_records(folder)
        for file_name, _, _ in records:
            counts[file_name] = counts.get(file_name, 0) + 1
    return counts


def _latest(frame: pd.DataFrame, key: str, order: list[str]) -> pd.DataFrame:
    return frame.sort_values(order).drop_duplicates(key, keep="last").reset_index(drop=True)


@dataclass
class Reference:
    """Expected marts."""

    dim_users: pd.DataFrame
    fct_daily_revenue: pd.DataFrame
    fct_user_daily_activity: pd.DataFrame


def build_reference(landing: Path) -> Reference:
    """Expected marts from the files in ``landing`` (one sub-folder per source)."""
    users = _validate("users", _csv_records(landing / "users"))
    users = _latest(users, "user_id", ["updated_at", "_source", "_source_line"])
    orders = _validate("orders", _csv_records(landing / "orders"))
    orders = _latest(orders, "order_id", ["updated_at", "_source", "_source_line"])
    events = _validate("user_events", _json_records(landing / "user_events"))
    events = _latest(events, "event_id", ["_source", "_source_line"])

    revenue = orders[orders["status"].isin(_revenue_statuses())].merge(
        users[["user_id", "geographic_region"]], on="user_id", how="left"
    )
    revenue["revenue_date"] = revenue["created_at"].dt.date
    revenue["amount"] = revenue["quantity"] * revenue["unit_price"]
    daily_revenue = (
        revenue.groupby(["revenue_date", "geographic_region"], dropna=False)
        .agg(
            order_count=("order_id", "count"),
            units_sold=("quantity", "sum"),
            revenue=("amount", "sum"),
        )
        .reset_index()
    )

    events["activity_date"] = events["event_timestamp"].dt.date
    events["is_purchase"] = events["event_type"] == "purchase"
    events["purchase_amount"] = [
        a if p and a is not None else Decimal("0")
        for a, p in zip(events["amount"], events["is_purchase"], strict=True)
    ]
    activity = (
        events.groupby(["user_id", "activity_date"])
        .agg(
            total_events=("event_id", "count"),
            distinct_event_types=("event_type", "nunique"),
            purchase_count=("is_purchase", "sum"),
            total_revenue=("purchase_amount", "sum"),
        )
        .reset_index()
        .merge(users[["user_id", "user_tier", "geographic_region", "signup_date"]], on="user_id")
    )
    activity["days_since_signup"] = [
        (a - s).days
        for a, s in zip(activity["activity_date"], activity["signup_date"], strict=True)
    ]
    activity = activity.drop(columns=["signup_date"])
    return Reference(
        dim_users=users, fct_daily_revenue=daily_revenue, fct_user_daily_activity=activity
    )
