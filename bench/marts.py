"""End-to-end baselines: the six marts computed two other ways, and a check that all agree.

The pipeline (file drops → contract validation → raw Delta tables → dbt staging → dbt marts in
the DuckDB warehouse) is measured against two programs that compute the same six marts
(``dim_users``, ``dim_products``, ``fct_orders``, ``fct_daily_revenue``,
``fct_user_daily_activity``, ``agg_events_per_minute``) straight from the generated landing
files, with the same rules and the same result rows:

the floor (:func:`run_floor`)
    ``bench/floor.sql``, one hand-written DuckDB script: DuckDB's CSV reader for the CSV drops,
    each JSON line read as text and taken apart with one ``json_extract_string`` call, the
    contract rules as ``WHERE`` conditions, ``QUALIFY row_number()`` for the newest version per
    key, the marts as ``COPY ... TO '<out>/<mart>.parquet'``. Python only sets the ``landing``
    and ``out`` variables and the contract enums, and executes the script. It is the least work that gives the marts:
    no ingestion bookkeeping, no Delta, no dead-letter table, no dbt.
the pandas way (:func:`run_pandas`)
    A single-process pandas program in the common tutorial style: ``pd.read_csv(dtype=str)``
    per file, ``json.loads`` per JSON line in ``try``/``except``, one boolean mask per contract
    rule OR-ed together (``str.fullmatch``, ``pd.to_numeric(errors="coerce")``,
    ``pd.to_datetime(errors="coerce")``, ``isin``, comparisons), ``sort_values`` then
    ``drop_duplicates`` for the newest version, ``merge`` and ``groupby().agg()`` for the marts,
    ``to_parquet``. Money is float64 rounded to cents, as such code usually has it.
ours
    The pipeline itself; its marts are tables ``main.<mart>`` of the warehouse file.

:func:`compare_marts` checks ours against a folder of ``<mart>.parquet`` files and
:func:`compare_dirs` two such folders, entirely inside DuckDB (``EXCEPT ALL`` both ways plus row
counts, on the columns of :data:`MART_COLUMNS` cast to canonical types), so that marts of ten
million rows compare without loading them into Python.

Semantics shared by both baselines, taken from ``assets_project/lib/validation.py``: an empty
value is missing; integers must match ``[+-]?[0-9]+`` after trimming spaces and fit the type;
decimals, dates and timestamps are parsed from the trimmed text (timestamps in UTC); varchar
values are checked as they are; a JSON line must be a valid JSON object and a field's text is
what ``json_extract_string`` gives (numbers and booleans as their JSON text); any broken rule
drops the row. Newest version per key: ``updated_at``, then file name, then line (users,
products, orders); the last (file, line) per ``event_id`` (events).

Known limits (inputs the demo generator never produces; the pipeline handles them all): the
floor maps CSV columns by position (the demo header order) and breaks ties between versions
in one file by value, as DuckDB's readers give no line number. The pandas way gives money as
float (a value with more than two decimals may round differently from DECIMAL(12,2)), parses
dates only as ``YYYY-MM-DD`` (DuckDB also takes ``2025-1-5`` or a timestamp), takes the last
of duplicate JSON keys (DuckDB the first), splits JSON lines at ``\\n`` only and fails a whole
CSV file on a byte that is not UTF-8.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from assets_project.lib.contracts import load_contract

log = logging.getLogger(__name__)

FLOOR_SQL = Path(__file__).resolve().parent / "floor.sql"
#: The contract enums the baselines check, by the name of the floor's variable.
ENUMS: dict[str, tuple[str, ...]] = {
    "user_tiers": load_contract("users").enum("user_tier"),
    "regions": load_contract("users").enum("geographic_region"),
    "categories": load_contract("products").enum("category"),
    "statuses": load_contract("orders").enum("status"),
    "revenue_statuses": load_contract("orders").enum("status", "revenue"),
    "event_types": load_contract("user_events").enum("event_type"),
}

#: The columns compared per mart (not the bookkeeping of incremental runs, which is ingestion or
#: staging time: ``agg_events_per_minute.last_extracted_at``, ``fct_user_daily_activity.
#: last_staged_at``).
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "dim_users": (
        "user_id",
        "email",
        "signup_date",
        "user_tier",
        "geographic_region",
        "updated_at",
    ),
    "dim_products": ("product_id", "product_name", "category", "unit_price", "updated_at"),
    "fct_orders": (
        "order_id",
        "user_id",
        "product_id",
        "quantity",
        "unit_price",
        "order_amount",
        "status",
        "is_revenue",
        "order_date",
        "created_at",
        "updated_at",
        "geographic_region",
        "category",
    ),
    "fct_daily_revenue": (
        "revenue_date",
        "geographic_region",
        "order_count",
        "units_sold",
        "revenue",
    ),
    "fct_user_daily_activity": (
        "user_id",
        "activity_date",
        "total_events",
        "distinct_event_types",
        "purchase_count",
        "total_revenue",
        "user_tier",
        "geographic_region",
        "days_since_signup",
    ),
    "agg_events_per_minute": (
        "window_start",
        "window_end",
        "event_type",
        "event_count",
        "distinct_users",
        "amount_total",
    ),
}

_INT, _MONEY, _DATE, _TS, _BOOL, _TEXT = (
    "BIGINT",
    "DECIMAL(18, 2)",
    "DATE",
    "TIMESTAMP",
    "BOOLEAN",
    "VARCHAR",
)
#: The canonical type each compared column is cast to on both sides before comparing.
CANONICAL_TYPES: dict[str, str] = {
    "user_id": _INT,
    "email": _TEXT,
    "signup_date": _DATE,
    "user_tier": _TEXT,
    "geographic_region": _TEXT,
    "updated_at": _TS,
    "product_id": _INT,
    "product_name": _TEXT,
    "category": _TEXT,
    "unit_price": _MONEY,
    "order_id": _INT,
    "quantity": _INT,
    "order_amount": _MONEY,
    "status": _TEXT,
    "is_revenue": _BOOL,
    "order_date": _DATE,
    "created_at": _TS,
    "revenue_date": _DATE,
    "order_count": _INT,
    "units_sold": _INT,
    "revenue": _MONEY,
    "activity_date": _DATE,
    "total_events": _INT,
    "distinct_event_types": _INT,
    "purchase_count": _INT,
    "total_revenue": _MONEY,
    "days_since_signup": _INT,
    "window_start": _TS,
    "window_end": _TS,
    "event_type": _TEXT,
    "event_count": _INT,
    "distinct_users": _INT,
    "amount_total": _MONEY,
}

_EXAMPLES = 3


def _sql_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- the floor


def run_floor(landing: Path, out: Path) -> None:
    """Compute the six marts from ``landing`` with ``bench/floor.sql`` into ``out/<mart>.parquet``.

    DuckDB runs with its defaults (all cores, in memory); Python only sets the variables (the
    two paths and the contract enums, :data:`ENUMS`).
    """
    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")
        connection.execute("SET VARIABLE landing = ?", [str(landing)])
        connection.execute("SET VARIABLE out = ?", [str(out)])
        for name, members in ENUMS.items():
            connection.execute(f"SET VARIABLE {name} = ?::VARCHAR[]", [list(members)])
        connection.execute(FLOOR_SQL.read_text(encoding="utf-8"))
    log.info("floor: marts of %s written to %s", landing, out)


# --------------------------------------------------------------------------- the pandas way

INTEGER = r"[+-]?[0-9]+"
BIGINT_RANGE = (-(2**63), 2**63 - 1)
INTEGER_RANGE = (-(2**31), 2**31 - 1)
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# The contract enums (from the contracts, as the floor's variables are).
TIERS = list(ENUMS["user_tiers"])
REGIONS = list(ENUMS["regions"])
CATEGORIES = list(ENUMS["categories"])
STATUSES = list(ENUMS["statuses"])
REVENUE_STATUSES = list(ENUMS["revenue_statuses"])
EVENT_TYPES = list(ENUMS["event_types"])


def to_int(text: pd.Series, bounds: tuple[int, int] = BIGINT_RANGE) -> pd.Series:
    """Whole numbers (``[+-]?[0-9]+`` after trimming spaces, within ``bounds``), else NaN."""
    text = text.str.strip(" ")
    number = pd.to_numeric(text.where(text.str.fullmatch(INTEGER)), errors="coerce")
    return number.where(number.between(*bounds))


def to_money(text: pd.Series) -> pd.Series:
    """Amounts as float rounded to cents (what DECIMAL(12,2) keeps), else NaN."""
    return pd.to_numeric(text.str.strip(" "), errors="coerce").round(2)


def to_timestamp(text: pd.Series) -> pd.Series:
    """UTC timestamps without zone (text without a zone is UTC), else NaT."""
    parsed = pd.to_datetime(text.str.strip(" "), errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None)


def to_date(text: pd.Series) -> pd.Series:
    """Calendar dates ``YYYY-MM-DD``, else NaT."""
    return pd.to_datetime(text.str.strip(" "), errors="coerce", format="%Y-%m-%d")


def read_csv_files(folder: Path) -> pd.DataFrame:
    """All CSV files of a folder as text, with ``_file`` and ``_line``; empty values as NaN."""
    frames = []
    for path in sorted(folder.glob("*.csv")):
        # keep_default_na=False: "NA" or "null" is text, only an empty field is missing.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
        frame["_file"] = path.name
        frame["_line"] = np.arange(1, len(frame) + 1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).replace("", np.nan)


def _json_text(value: Any) -> str | None:
    """A JSON value as json_extract_string gives it: strings as they are, the rest as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


EVENT_FIELDS = ["event_id", "user_id", "event_type", "event_timestamp", "amount"]


def read_event_files(folder: Path) -> pd.DataFrame:
    """All JSON-lines files of a folder: one row of text fields per line that is a JSON object.

    ``properties_ok`` says whether ``properties`` is valid JSON (it can only fail to be when it
    is a JSON string holding something else). Files are turned into DataFrames one at a time.
    """
    frames = []
    for path in sorted(folder.glob("*.jsonl")):
        rows = []
        with path.open("rb") as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    record = json.loads(line)
                except ValueError:  # also UnicodeDecodeError
                    continue
                if not isinstance(record, dict):
                    continue
                properties = record.get("properties")
                amount = properties.get("amount") if isinstance(properties, dict) else None
                rows.append(
                    (
                        _json_text(record.get("event_id")),
                        _json_text(record.get("user_id")),
                        _json_text(record.get("event_type")),
                        _json_text(record.get("event_timestamp")),
                        _json_text(amount),
                        not isinstance(properties, str) or not properties or _is_json(properties),
                        line_number,
                    )
                )
        frame = pd.DataFrame(rows, columns=[*EVENT_FIELDS, "properties_ok", "_line"])
        del rows
        frame = frame.astype(dict.fromkeys(EVENT_FIELDS, "str"))
        frame["_file"] = path.name
        frames.append(frame)
    events = pd.concat(frames, ignore_index=True)
    events[EVENT_FIELDS] = events[EVENT_FIELDS].replace("", np.nan)
    return events


def _missing(df: pd.DataFrame, *columns: str) -> pd.Series:
    """Rows where any of ``columns`` is missing (a required value)."""
    return df[list(columns)].isna().any(axis=1)


def _newest(
    df: pd.DataFrame,
    bad: pd.Series,
    key: str,
    *,
    integers: Sequence[str],
    versions: Sequence[str] = ("updated_at",),
) -> pd.DataFrame:
    """The rows not ``bad``, ``integers`` as int64, the newest per ``key``: the last by
    ``versions``, then file and line."""
    df = df[~bad].astype(dict.fromkeys(integers, "int64"))
    return df.sort_values([*versions, "_file", "_line"]).drop_duplicates(key, keep="last")


def pandas_users(landing: Path) -> pd.DataFrame:
    """Valid users, newest version per user_id."""
    df = read_csv_files(landing / "users")
    df["user_id"] = to_int(df["user_id"])
    df["signup_date"] = to_date(df["signup_date"])
    df["updated_at"] = to_timestamp(df["updated_at"])
    bad = (
        _missing(df, "user_id", "email", "signup_date", "updated_at")
        | ~df["email"].str.fullmatch(EMAIL)
        | (df["email"].str.len() > 254)
        | ~df["user_tier"].isin(TIERS)
        | ~df["geographic_region"].isin(REGIONS)
    )
    df = _newest(df, bad, "user_id", integers=["user_id"])
    return df[list(MART_COLUMNS["dim_users"])].reset_index(drop=True)


def pandas_products(landing: Path) -> pd.DataFrame:
    """Valid products, newest version per product_id."""
    df = read_csv_files(landing / "products").rename(columns={"name": "product_name"})
    df["product_id"] = to_int(df["product_id"])
    df["unit_price"] = to_money(df["unit_price"])
    df["updated_at"] = to_timestamp(df["updated_at"])
    bad = (
        _missing(df, "product_id", "product_name", "unit_price", "updated_at")
        | (df["product_name"].str.len() > 200)
        | ~df["category"].isin(CATEGORIES)
        | (df["unit_price"] < 0)
        | (df["unit_price"] > 100_000)
    )
    df = _newest(df, bad, "product_id", integers=["product_id"])
    return df[list(MART_COLUMNS["dim_products"])].reset_index(drop=True)


def pandas_orders(landing: Path) -> pd.DataFrame:
    """Valid orders, newest version per order_id."""
    df = read_csv_files(landing / "orders")
    for column in ("order_id", "user_id", "product_id"):
        df[column] = to_int(df[column])
    df["quantity"] = to_int(df["quantity"], INTEGER_RANGE)
    df["unit_price"] = to_money(df["unit_price"])
    df["created_at"] = to_timestamp(df["created_at"])
    df["updated_at"] = to_timestamp(df["updated_at"])
    bad = (
        _missing(df, "order_id", "user_id", "product_id", "quantity", "unit_price")
        | _missing(df, "created_at", "updated_at")
        | (df["quantity"] < 1)
        | (df["quantity"] > 1000)
        | (df["unit_price"] < 0)
        | (df["unit_price"] > 100_000)
        | ~df["status"].isin(STATUSES)
    )
    return _newest(df, bad, "order_id", integers=["order_id", "user_id", "product_id", "quantity"])


def pandas_events(landing: Path) -> pd.DataFrame:
    """Valid events, one per event_id (the last by file and line)."""
    df = read_event_files(landing / "user_events")
    df["user_id"] = to_int(df["user_id"])
    df["event_timestamp"] = to_timestamp(df["event_timestamp"])
    amount = to_money(df["amount"])
    bad = (
        _missing(df, "event_id", "user_id", "event_timestamp")
        | ~df["event_id"].str.fullmatch(UUID)
        | ~df["event_type"].isin(EVENT_TYPES)
        | ~df["properties_ok"]
        | (df["amount"].notna() & amount.isna())
        | (amount < 0)
        | (amount > 100_000)
    )
    df["amount"] = amount
    df = _newest(df, bad, "event_id", integers=["user_id"], versions=[])
    return df[["user_id", "event_type", "event_timestamp", "amount"]]


def run_pandas(landing: Path, out: Path) -> None:
    """Compute the six marts from ``landing`` the pandas way into ``out/<mart>.parquet``."""
    out.mkdir(parents=True, exist_ok=True)
    users = pandas_users(landing)
    users.to_parquet(out / "dim_users.parquet", index=False)
    products = pandas_products(landing)
    products.to_parquet(out / "dim_products.parquet", index=False)

    orders = pandas_orders(landing)
    orders = orders.merge(users[["user_id", "geographic_region"]], on="user_id", how="left")
    orders = orders.merge(products[["product_id", "category"]], on="product_id", how="left")
    orders["order_amount"] = (orders["quantity"] * orders["unit_price"]).round(2)
    orders["is_revenue"] = orders["status"].isin(REVENUE_STATUSES)
    orders["order_date"] = orders["created_at"].dt.normalize()
    orders = orders[list(MART_COLUMNS["fct_orders"])]
    orders.to_parquet(out / "fct_orders.parquet", index=False)

    revenue = (
        orders[orders["is_revenue"]]
        .groupby(["order_date", "geographic_region"], dropna=False)
        .agg(
            order_count=("order_id", "size"),
            units_sold=("quantity", "sum"),
            revenue=("order_amount", "sum"),
        )
        .reset_index()
        .rename(columns={"order_date": "revenue_date"})
    )
    revenue["revenue"] = revenue["revenue"].round(2)
    revenue.to_parquet(out / "fct_daily_revenue.parquet", index=False)
    del orders, revenue

    events = pandas_events(landing)
    events["activity_date"] = events["event_timestamp"].dt.normalize()
    events["is_purchase"] = events["event_type"] == "purchase"
    events["purchase_amount"] = events["amount"].where(events["is_purchase"])
    activity = (
        events.groupby(["user_id", "activity_date"])
        .agg(
            total_events=("event_type", "size"),
            distinct_event_types=("event_type", "nunique"),
            purchase_count=("is_purchase", "sum"),
            total_revenue=("purchase_amount", "sum"),
        )
        .reset_index()
        .merge(
            users[["user_id", "user_tier", "geographic_region", "signup_date"]],
            on="user_id",
            how="left",
        )
    )
    activity["total_revenue"] = activity["total_revenue"].round(2)
    activity["days_since_signup"] = (
        activity["activity_date"] - activity["signup_date"]
    ).dt.days.astype("Int64")
    activity = activity[list(MART_COLUMNS["fct_user_daily_activity"])]
    activity.to_parquet(out / "fct_user_daily_activity.parquet", index=False)
    del activity

    events["window_start"] = events["event_timestamp"].dt.floor("min")
    per_minute = (
        events.groupby(["window_start", "event_type"])
        .agg(
            event_count=("user_id", "size"),
            distinct_users=("user_id", "nunique"),
            amount_total=("amount", "sum"),
        )
        .reset_index()
    )
    per_minute["window_end"] = per_minute["window_start"] + pd.Timedelta(minutes=1)
    per_minute["amount_total"] = per_minute["amount_total"].round(2)
    per_minute = per_minute[list(MART_COLUMNS["agg_events_per_minute"])]
    per_minute.to_parquet(out / "agg_events_per_minute.parquet", index=False)
    log.info("pandas: marts of %s written to %s", landing, out)


# --------------------------------------------------------------------------- comparing


def _canonical(mart: str, relation: str) -> str:
    columns = ", ".join(
        f"CAST({_ident(c)} AS {CANONICAL_TYPES[c]}) AS {_ident(c)}" for c in MART_COLUMNS[mart]
    )
    return f"SELECT {columns} FROM {relation}"


def _examples(connection: duckdb.DuckDBPyConnection, table: str, mart: str) -> str:
    rows = connection.sql(f"SELECT * FROM {table} ORDER BY ALL LIMIT {_EXAMPLES}").fetchall()
    names = MART_COLUMNS[mart]
    return "; ".join(
        "(" + ", ".join(f"{n}={v!s}" for n, v in zip(names, row, strict=True)) + ")" for row in rows
    )


def _compare_one(
    connection: duckdb.DuckDBPyConnection,
    mart: str,
    left: tuple[str, str],
    right: tuple[str, str],
) -> str | None:
    """A description of how the two relations differ on the mart's columns, or None."""
    (left_name, left_relation), (right_name, right_relation) = left, right
    try:
        connection.execute(
            f"CREATE OR REPLACE TEMP VIEW _left AS {_canonical(mart, left_relation)}"
        )
        connection.execute(
            f"CREATE OR REPLACE TEMP VIEW _right AS {_canonical(mart, right_relation)}"
        )
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE _only_left AS SELECT * FROM _left EXCEPT ALL "
            "SELECT * FROM _right"
        )
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE _only_right AS SELECT * FROM _right EXCEPT ALL "
            "SELECT * FROM _left"
        )
        (counts,) = connection.sql(
            "SELECT (SELECT count(*) FROM _left), (SELECT count(*) FROM _right), "
            "(SELECT count(*) FROM _only_left), (SELECT count(*) FROM _only_right)"
        ).fetchall()
    except duckdb.Error as exc:
        return f"cannot compare: {str(exc).strip().splitlines()[0]}"
    n_left, n_right, only_left, only_right = counts
    if n_left == n_right and only_left == 0 and only_right == 0:
        return None
    parts = [
        f"{left_name} has {n_left:,} rows, {right_name} {n_right:,}",
        f"{only_left:,} rows only in {left_name}, {only_right:,} only in {right_name}",
    ]
    if only_left:
        parts.append(f"only in {left_name}: {_examples(connection, '_only_left', mart)}")
    if only_right:
        parts.append(f"only in {right_name}: {_examples(connection, '_only_right', mart)}")
    return "; ".join(parts[:2]) + "".join(f"\n  {p}" for p in parts[2:])


def _compare(
    connection: duckdb.DuckDBPyConnection,
    left_name: str,
    left: Callable[[str], str],
    right_name: str,
    right: Callable[[str], str],
) -> dict[str, str]:
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    differences: dict[str, str] = {}
    for mart in MART_COLUMNS:
        difference = _compare_one(
            connection, mart, (left_name, left(mart)), (right_name, right(mart))
        )
        if difference is not None:
            differences[mart] = difference
            log.warning("%s differs: %s", mart, difference)
    return differences


def _parquet(folder: Path) -> Callable[[str], str]:
    return lambda mart: f"read_parquet({_sql_string(str(folder / f'{mart}.parquet'))})"


def compare_marts(ours_warehouse: Path, other_dir: Path) -> dict[str, str]:
    """Compare the marts of our warehouse with ``other_dir/<mart>.parquet``.

    Returns ``{mart: description}`` for every mart whose rows differ (row counts, rows only on
    one side and up to three example rows each way), ``{}`` when all six are identical.
    """
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH {_sql_string(str(ours_warehouse))} AS ours (READ_ONLY)")
        return _compare(
            connection,
            "ours",
            lambda mart: f"ours.main.{_ident(mart)}",
            other_dir.name if other_dir.name != "ours" else str(other_dir),
            _parquet(other_dir),
        )


def compare_dirs(a: Path, b: Path) -> dict[str, str]:
    """Compare ``a/<mart>.parquet`` with ``b/<mart>.parquet`` like :func:`compare_marts`."""
    names = (a.name, b.name) if a.name != b.name else (str(a), str(b))
    with duckdb.connect() as connection:
        return _compare(connection, names[0], _parquet(a), names[1], _parquet(b))
