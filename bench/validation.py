"""Contract validation: ours (one DuckDB query) against the pandas way and pandera.

The input is the ``orders`` contract's CSV layout as the reader hands it to the validator: an
Arrow table of text columns plus ``_source_line``, generated here with numpy and pyarrow from a
fixed seed. About 2 % of the rows carry the defects the demo generator injects (an empty
required field, a value of the wrong type, a value out of range, an unknown status), some rows
two of them; every other row is valid, so the expected number of rejected rows is known.

Implementations, each given the same rows:

``ours``
    :func:`~assets_project.lib.validation.run_validation` over batches of the size the CSV
    reader produces (``readers.BLOCK_SIZE`` bytes of CSV text, one Arrow chunk each), on one
    connection, the way ingestion feeds it; the valid and rejected tables are all kept.
``ours-stream``
    The same, but the valid rows of a batch are dropped once counted, as ingestion hands them to
    the Delta writer: the memory one batch in flight needs.
``ours-1batch``
    The same over the whole table in one call (how far batching matters).
``pandas``
    The tutorial way on a DataFrame of strings (pandas 3's default ``str`` dtype, Arrow-backed):
    one boolean mask per rule from ``pd.to_numeric(errors="coerce")``,
    ``pd.to_datetime(errors="coerce", format="ISO8601")``, ``str.fullmatch``, ``isin`` and
    comparisons; masks OR-ed together; rejected rows as ``df[bad].to_dict("records")`` with a
    list of reasons each; valid rows typed.
``pandas-object``
    The same on a DataFrame of Python ``object`` strings (what ``read_csv(dtype=str)`` gave
    before pandas 3, and what most tutorials assume).
``pandera``
    A pandera ``DataFrameSchema`` with the same rules, validated with ``lazy=True``; the failure
    cases of the ``SchemaErrors`` give the rejected rows. Columns stay text and every rule that
    needs a parsed value is a ``Check`` that parses: pandera's own ``coerce=True`` drops all range
    checks of a column in which any value fails to coerce (they fail with a ``TypeError`` failure
    case that names no row), which would miss out-of-range rows.

Each implementation runs in a fresh spawned process. Wall time covers the validation only
(input loaded, DataFrame built); peak memory is the process's peak RSS during one run above its
RSS just before it (``VmHWM`` after resetting it through ``/proc/self/clear_refs``). Before any
number is reported, every implementation must reject exactly the rows with injected defects and
give the same (line, column, rule, value) reasons as ours.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import re
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets_project.lib.contracts import Column, Contract, load_contract
from assets_project.lib.readers import BLOCK_SIZE
from assets_project.lib.validation import (
    ValidationQuery,
    compile_validation,
    new_connection,
    run_validation,
)
from bench.measure import RunTimes

SOURCE = "orders"
DEFECT_RATE = 0.02
SECOND_DEFECT_SHARE = 0.1  # of the defective rows, the share with a second broken field
IMPLEMENTATIONS = ("ours", "ours-stream", "ours-1batch", "pandas", "pandas-object", "pandera")
REASON_VALUE_PREVIEW = 200  # validation._VALUE_PREVIEW

BASE_S = 1_767_225_600  # 2026-01-01T00:00:00Z
MONTH_S = 31 * 86_400
STATUSES = load_contract("orders").enum("status")
_STATUS_P = (0.15, 0.25, 0.2, 0.3, 0.05, 0.05)  # per member of STATUSES, in its order

#: (column, broken value): one per kind the demo generator injects into orders, and a few more.
DEFECTS: tuple[tuple[str, str], ...] = (
    # required value missing
    ("order_id", ""),
    ("user_id", ""),
    ("product_id", ""),
    ("quantity", ""),
    ("unit_price", ""),
    ("status", ""),
    ("created_at", ""),
    ("updated_at", ""),
    # wrong type
    ("order_id", "99999999999999999999"),
    ("user_id", "abc"),
    ("product_id", "p-17"),
    ("quantity", "2.5"),
    ("quantity", "3000000000"),
    ("unit_price", "12,50"),
    ("unit_price", "EUR 12.50"),
    ("created_at", "2026-13-45 10:00:00"),
    ("updated_at", "yesterday"),
    # out of range
    ("quantity", "0"),
    ("quantity", "-1"),
    ("quantity", "5000"),
    ("unit_price", "-12.50"),
    ("unit_price", "250000.00"),
    # unknown enum member
    ("status", "lost"),
    ("status", "refunded"),
    ("status", "PAID"),
    ("status", " paid"),
)

Reason = tuple[int, str, str, Any]  # (source line, column, rule, value)


# --------------------------------------------------------------------------- input


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _int_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _money_text(cents: np.ndarray) -> pa.Array:
    frac = pc.utf8_lpad(_int_text(cents % 100), width=2, padding="0")
    return pc.binary_join_element_wise(_int_text(cents // 100), ".", frac, "")


def _timestamp_text(seconds: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(seconds.astype("datetime64[s]")), pa.string())


def orders_batch(rows: int, seed: int = 42) -> tuple[pa.Table, int]:
    """``rows`` order rows as text (plus ``_source_line``) and how many of them are invalid."""
    rng = np.random.default_rng(seed)
    created = BASE_S + rng.integers(0, MONTH_S, rows)
    columns: dict[str, pa.Array] = {
        "order_id": _int_text(np.arange(1, rows + 1)),
        "user_id": _int_text(rng.integers(1, 500_001, rows)),
        "product_id": _int_text(rng.integers(1, 50_001, rows)),
        "quantity": _int_text(1 + rng.geometric(0.6, rows)),
        "unit_price": _money_text(rng.integers(99, 50_000, rows)),
        "status": _strings(STATUSES).take(
            pa.array(rng.choice(len(STATUSES), size=rows, p=_STATUS_P))
        ),
        "created_at": _timestamp_text(created),
        "updated_at": _timestamp_text(created + rng.integers(0, 5 * 86_400, rows)),
    }

    # Defects: a primary one per defective row, a second one on another column for some rows.
    bad_rows = np.flatnonzero(rng.random(rows) < DEFECT_RATE)
    first = rng.integers(0, len(DEFECTS), len(bad_rows))
    second_rows = rng.random(len(bad_rows)) < SECOND_DEFECT_SHARE
    second = rng.integers(0, len(DEFECTS), len(bad_rows))
    defect_column = np.array([c for c, _ in DEFECTS])
    second_rows &= defect_column[second] != defect_column[first]
    picks = [(bad_rows, first), (bad_rows[second_rows], second[second_rows])]
    values = _strings([v for _, v in DEFECTS])
    for name in columns:
        rows_hit, codes = [], []
        for at, kinds in picks:
            hit = defect_column[kinds] == name
            rows_hit.append(at[hit])
            codes.append(kinds[hit])
        where = np.concatenate(rows_hit)
        order = np.argsort(where)
        mask = np.zeros(rows, dtype=bool)
        mask[where] = True
        replacement = values.take(pa.array(np.concatenate(codes)[order]))
        columns[name] = pc.replace_with_mask(columns[name], pa.array(mask), replacement)

    table = pa.table({"_source_line": pa.array(np.arange(2, rows + 2)), **columns})
    return table, len(bad_rows)


def csv_bytes_per_row(table: pa.Table) -> float:
    """Bytes per row of the table written as CSV (values, separators and line end)."""
    text = [table[name] for name in table.column_names if name != "_source_line"]
    data = sum(pc.sum(pc.binary_length(column)).as_py() or 0 for column in text)
    return data / max(table.num_rows, 1) + len(text)


def reader_batch_rows(table: pa.Table) -> int:
    """Rows in a batch of the CSV reader (``BLOCK_SIZE`` bytes of CSV text) for this data."""
    return max(1, int(BLOCK_SIZE / csv_bytes_per_row(table)))


# --------------------------------------------------------------------------- implementations


@dataclass
class Outcome:
    """What one implementation produced: counts, and a way to list its reasons (untimed)."""

    valid_rows: int
    rejected_rows: int
    reasons: Callable[[], list[Reason]]
    keep: Any = None  # the implementation's own result, kept alive until it is measured


def _chunks(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def run_ours(
    table: pa.Table, contract: Contract, chunk_rows: int | None, *, keep_valid: bool = True
) -> Outcome:
    """Validate ``table`` with ``run_validation``, in batches of ``chunk_rows`` (None: at once).

    Without ``keep_valid`` the valid rows of a batch are dropped once counted, as ingestion
    hands them on to the Delta writer; the rejected rows are kept either way.
    """
    file_columns = [name for name in table.column_names if name != "_source_line"]
    query = compile_validation(contract, file_columns)
    connection = new_connection()
    connection.execute("SET enable_progress_bar = false")  # display only: keeps stderr clean
    valid_parts, rejected_parts = [], []
    valid_rows = 0
    for chunk in _chunks(table, chunk_rows or table.num_rows):
        valid, rejected = run_validation(connection, query, chunk)
        valid_rows += valid.num_rows
        if keep_valid:
            valid_parts.append(valid)
        del valid
        rejected_parts.append(rejected)
    connection.close()
    valid_kept = pa.concat_tables(valid_parts) if valid_parts else None
    rejected = pa.concat_tables(rejected_parts)

    def reasons() -> list[Reason]:
        lines = rejected["_source_line"].to_pylist()
        return [
            (line, r["column"], r["rule"], r["value"])
            for line, row in zip(lines, rejected["_reasons"].to_pylist(), strict=True)
            for r in row
        ]

    return Outcome(valid_rows, rejected.num_rows, reasons, keep=(valid_kept, rejected))


def _rule_texts(column: Column) -> dict[str, str]:
    """The rule texts of ``validation._rules``, so that reasons compare equal."""
    texts = {"type": f"not a valid {column.type}", "required": "required value is missing"}
    if column.enum is not None:
        texts["enum"] = f"not one of {', '.join(column.enum)}"
    if column.min is not None:
        texts["min"] = f"below minimum {column.min:g}"
    if column.max is not None:
        texts["max"] = f"above maximum {column.max:g}"
    return texts


_INTEGER = r"[+-]?[0-9]+"
_INT_BOUNDS = {"bigint": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1)}


def pandas_typed(column: Column, raw: Any) -> Any:
    """``raw`` (a Series of text, NaN for missing) parsed to the column's type, NaN/NaT if not."""
    import pandas as pd

    if column.type in _INT_BOUNDS:
        text = raw.str.strip()
        number = pd.to_numeric(text.where(text.str.fullmatch(_INTEGER)), errors="coerce")
        low, high = _INT_BOUNDS[column.type]
        return number.where(number.between(low, high))
    if column.type == "double" or column.type.startswith("decimal"):
        return pd.to_numeric(raw.str.strip(), errors="coerce")
    if column.type == "timestamp":
        return pd.to_datetime(raw.str.strip(), errors="coerce", utc=True, format="ISO8601")
    if column.type == "varchar" and not (column.regex or column.max_length):
        return raw
    raise NotImplementedError(f"the pandas way here does not handle {column.type} {column.name}")


def run_pandas(df: Any, contract: Contract) -> Outcome:
    """The tutorial way: one boolean mask per rule, then the rejected rows as records."""
    import pandas as pd

    masks: list[tuple[str, str, Any, Any]] = []  # (column, rule, mask, raw values)
    typed: dict[str, Any] = {"_source_line": df["_source_line"]}
    for column in contract.columns:
        raw = df[column.name].replace("", np.nan)
        value = pandas_typed(column, raw)
        typed[column.name] = value
        texts = _rule_texts(column)
        rules = []
        if column.required:
            rules.append(("required", raw.isna()))
        rules.append(("type", raw.notna() & value.isna()))
        if column.enum is not None:
            rules.append(("enum", value.notna() & ~value.isin(column.enum)))
        if column.min is not None:
            rules.append(("min", value < column.min))
        if column.max is not None:
            rules.append(("max", value > column.max))
        for kind, mask in rules:
            masks.append((column.name, texts[kind], mask.to_numpy(dtype=bool), raw))

    bad = reduce(np.logical_or, (mask for _, _, mask, _ in masks))
    valid = pd.DataFrame(typed)[~bad]
    valid = valid.astype({c.name: "int64" for c in contract.columns if c.type in _INT_BOUNDS})
    rejected = df[bad].to_dict("records")
    positions = np.flatnonzero(bad)
    reasons: list[list[dict[str, Any]]] = [[] for _ in positions]
    for name, rule, mask, raw in masks:
        hits = np.flatnonzero(mask)
        values = raw.to_numpy(dtype=object, na_value=None)[hits]
        for i, value in zip(np.searchsorted(positions, hits).tolist(), values, strict=True):
            if isinstance(value, str):
                value = value[:REASON_VALUE_PREVIEW]
            reasons[i].append({"column": name, "rule": rule, "value": value})
    for record, row_reasons in zip(rejected, reasons, strict=True):
        record["_reasons"] = row_reasons

    def listed() -> list[Reason]:
        return [
            (record["_source_line"], r["column"], r["rule"], r["value"])
            for record in rejected
            for r in record["_reasons"]
        ]

    return Outcome(len(valid), len(rejected), listed, keep=(valid, rejected))


def pandera_schema(contract: Contract) -> Any:
    """A pandera schema with the contract's rules over text columns (missing values as NaN)."""
    import pandera.pandas as pa_

    def parsed(column: Column) -> Callable[[Any], Any]:
        return lambda s: pandas_typed(column, s)

    columns = {}
    for column in contract.columns:
        texts = _rule_texts(column)
        typed = parsed(column)
        checks = [pa_.Check(lambda s, typed=typed: typed(s).notna(), name=texts["type"])]
        if column.enum is not None:
            checks.append(pa_.Check.isin(list(column.enum), name=texts["enum"]))
        if column.min is not None:
            low = column.min
            checks.append(
                pa_.Check(lambda s, typed=typed, low=low: ~(typed(s) < low), name=texts["min"])
            )
        if column.max is not None:
            high = column.max
            checks.append(
                pa_.Check(lambda s, typed=typed, high=high: ~(typed(s) > high), name=texts["max"])
            )
        columns[column.name] = pa_.Column(str, checks=checks, nullable=not column.required)
    return pa_.DataFrameSchema(columns)


def run_pandera(df: Any, contract: Contract, schema: Any) -> Outcome:
    """``schema.validate(lazy=True)``; the failure cases name the rejected rows."""
    import pandera.pandas as pa_

    frame = df.replace("", np.nan)
    try:
        schema.validate(frame, lazy=True)
        failures = None
    except pa_.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    if failures is None or failures.empty:
        bad = np.zeros(len(frame), dtype=bool)
    else:
        if failures["index"].isna().any():
            raise RuntimeError(
                f"pandera failures without a row:\n{failures[failures['index'].isna()]}"
            )
        bad = np.zeros(len(frame), dtype=bool)
        bad[failures["index"].astype("int64").to_numpy()] = True
    valid = frame[~bad]
    rejected_rows = int(bad.sum())

    def listed() -> list[Reason]:
        if failures is None:
            return []
        lines = frame["_source_line"].to_numpy()
        # Custom checks report their name; built-in ones (isin) their own text.
        rules = {"not_nullable": "required value is missing"}
        for column in contract.columns:
            texts = _rule_texts(column)
            if column.enum is not None:
                rules[f"isin({list(column.enum)!r})"] = texts["enum"]
        out = []
        for column, check, value, index in failures[
            ["column", "check", "failure_case", "index"]
        ].itertuples(index=False):
            value = (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            )
            out.append((int(lines[int(index)]), column, rules.get(check, check), value))
        return out

    return Outcome(len(valid), rejected_rows, listed, keep=(valid, failures))


# --------------------------------------------------------------------------- measurement


def write_ipc(table: pa.Table, path: str) -> None:
    """Write ``table`` to an uncompressed Arrow IPC file (the input handed to each process)."""
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_ipc(path: str) -> pa.Table:
    """Read an Arrow IPC file into memory (not memory-mapped: the input counts as resident)."""
    with pa.OSFile(path) as handle:
        return pa.ipc.open_file(handle).read_all()


def _status_kib(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False where the kernel can't."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Measurement(RunTimes):
    """One implementation's runs at one size."""

    implementation: str
    rows: int
    seconds: list[float]
    cpu_seconds: list[float]  # user + system CPU time of each run (all threads)
    peak_mib: float  # peak RSS above the RSS before the run, largest over the runs
    baseline_mib: float  # RSS with the input loaded, before the first run
    valid_rows: int
    rejected_rows: int
    setup_seconds: float = 0.0  # input preparation that is not timed (Arrow -> DataFrame)
    input_mib: float = 0.0  # memory of the implementation's input (Arrow or DataFrame)
    arrow_mib: float = 0.0  # Arrow size of the text the peak is compared with
    batch_rows: int | None = None
    peak_exact: bool = True
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_seconds)


def measure(implementation: str, input_path: str, repeat: int) -> Measurement:
    """Load the input, run ``implementation`` ``repeat`` times; meant for a fresh process."""
    table = read_ipc(input_path)
    contract = load_contract(SOURCE)
    rows = table.num_rows
    setup = 0.0
    batch_rows = None
    notes: list[str] = []
    input_mib = arrow_mib = table.nbytes / 2**20
    if implementation in ("ours", "ours-stream", "ours-1batch"):
        batch_rows = rows if implementation == "ours-1batch" else reader_batch_rows(table)
        keep_valid = implementation != "ours-stream"
        if implementation == "ours-stream":
            arrow_mib = table.slice(0, batch_rows).nbytes / 2**20  # one batch in flight

        def run() -> Outcome:
            return run_ours(table, contract, batch_rows, keep_valid=keep_valid)

    elif implementation in ("pandas", "pandas-object", "pandera"):
        started = time.perf_counter()
        df = table.to_pandas()
        if implementation == "pandas-object":
            df = df.astype({name: object for name in table.column_names[1:]})
        setup = time.perf_counter() - started
        input_mib = df.memory_usage(deep=True).sum() / 2**20
        # The table stays: memory freed now could be reused by the run and hide its peak.
        if implementation != "pandera":

            def run() -> Outcome:
                return run_pandas(df, contract)

        else:
            schema = pandera_schema(contract)

            def run() -> Outcome:
                return run_pandera(df, contract, schema)

    else:
        raise ValueError(f"unknown implementation {implementation!r}")

    gc.collect()
    pa.default_memory_pool().release_unused()
    baseline = _status_kib("VmRSS")
    seconds: list[float] = []
    peaks: list[int] = []
    exact = True
    outcome: Outcome | None = None
    cpu: list[float] = []
    for _ in range(repeat):
        outcome = None  # the previous run's result is freed before the next run starts
        gc.collect()
        before = _status_kib("VmRSS")
        exact = _reset_peak() and exact
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        outcome = run()
        seconds.append(time.perf_counter() - started)
        cpu.append(_cpu_seconds() - cpu_before)
        peaks.append(_status_kib("VmHWM") - (before if exact else 0))
    assert outcome is not None
    if not exact:
        notes.append("peak is the process's peak RSS (clear_refs not writable)")
    return Measurement(
        implementation=implementation,
        rows=rows,
        seconds=seconds,
        cpu_seconds=cpu,
        peak_mib=max(peaks) / 1024,
        baseline_mib=baseline / 1024,
        valid_rows=outcome.valid_rows,
        rejected_rows=outcome.rejected_rows,
        setup_seconds=setup,
        input_mib=input_mib,
        arrow_mib=arrow_mib,
        batch_rows=batch_rows,
        peak_exact=exact,
        reasons=sorted(outcome.reasons(), key=_reason_key),
        notes=notes,
    )


def _reason_key(reason: Reason) -> tuple[int, str, str, str]:
    line, column, rule, value = reason
    return line, column, rule, "" if value is None else str(value)


def measure_in_fresh_process(implementation: str, input_path: str, repeat: int) -> Measurement:
    """:func:`measure` in a new spawned interpreter (so peak memory is this run's alone)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, implementation, input_path, repeat).result()


@dataclass
class CaseResult:
    """All implementations at one size, checked against each other."""

    rows: int
    arrow_mib: float
    csv_bytes_per_row: float
    expected_rejected: int
    generate_seconds: float
    measurements: list[Measurement]


def run_case(
    rows: int,
    repeat: int,
    implementations: Sequence[str] = IMPLEMENTATIONS,
    *,
    seed: int = 42,
    repeat_for: dict[str, int] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> CaseResult:
    """Generate ``rows`` orders once, measure each implementation, check they agree."""
    started = time.perf_counter()
    table, expected = orders_batch(rows, seed)
    generated = time.perf_counter() - started
    arrow_mib = table.nbytes / 2**20
    per_row = csv_bytes_per_row(table)
    log(
        f"{rows:,} rows: {arrow_mib:.0f} MiB of Arrow text, {expected:,} rows with defects "
        f"(generated in {generated:.1f} s)"
    )
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        path = os.path.join(tmp, "orders.arrow")
        write_ipc(table, path)
        del table
        for implementation in implementations:
            runs = (repeat_for or {}).get(implementation, repeat)
            log(f"  {implementation}: {runs} run(s) ...")
            result = measure_in_fresh_process(implementation, path, runs)
            log(
                f"  {implementation}: min {result.min_s:.2f} s, median {result.median_s:.2f} s, "
                f"peak +{result.peak_mib:.0f} MiB"
            )
            measurements.append(result)
    check_agreement(measurements, rows, expected)
    return CaseResult(rows, arrow_mib, per_row, expected, generated, measurements)


def check_agreement(measurements: Sequence[Measurement], rows: int, expected: int) -> None:
    """Every implementation rejects exactly the defective rows, for the same reasons as ours."""
    for m in measurements:
        if (m.valid_rows, m.rejected_rows) != (rows - expected, expected):
            raise AssertionError(
                f"{m.implementation}: {m.valid_rows:,} valid and {m.rejected_rows:,} rejected "
                f"rows; expected {rows - expected:,} and {expected:,}"
            )
    reference = next((m for m in measurements if m.implementation.startswith("ours")), None)
    if reference is None:
        return
    for m in measurements:
        if m.reasons != reference.reasons:
            ours, theirs = set(reference.reasons), set(m.reasons)
            sample = sorted(ours ^ theirs, key=_reason_key)[:10]
            raise AssertionError(
                f"{m.implementation} gives other reasons than {reference.implementation}: "
                f"{len(ours - theirs)} missing, {len(theirs - ours)} extra, e.g. {sample}"
            )
    for m in measurements:
        m.reasons = []  # compared: no need to keep them


# --------------------------------------------------------------------------- where ours spends


def breakdown_ours(
    rows: int, seed: int = 42, batch_rows: int | None = None, runs: int = 3
) -> dict[str, float]:
    """Best-of-``runs`` seconds per phase of ``run_validation`` and of variants (one batch).

    The variants are not what ingestion runs; they show what parts of the query cost, and
    every variant that yields reasons is checked to give the same reasons and records.
    """
    table, _ = orders_batch(rows, seed)
    contract = load_contract(SOURCE)
    file_columns = [name for name in table.column_names if name != "_source_line"]
    batch = table.slice(0, batch_rows or rows)
    connection = new_connection()
    connection.execute("SET enable_progress_bar = false")
    timings: dict[str, float] = {}

    def best(label: str, work: Callable[[], Any]) -> Any:
        work()  # warm-up
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            out = work()
            seconds.append(time.perf_counter() - started)
        timings[label] = min(seconds)
        return out

    query = best("compile the query", lambda: compile_validation(contract, file_columns))
    best("run_validation (all of it)", lambda: run_validation(connection, query, batch))

    def execute(sql: str, params: dict[str, Any], data: pa.Table = batch) -> pa.Table:
        used = set(re.findall(r"\$(p\d+)\b", sql))
        connection.register("batch", data)
        try:
            return connection.sql(
                sql, params={k: v for k, v in params.items() if k in used}
            ).to_arrow_table()
        finally:
            connection.unregister("batch")

    result = best(
        "of which: query (register, execute, fetch Arrow)", lambda: execute(query.sql, query.params)
    )

    def split() -> tuple[pa.Table, pa.Table]:
        ok = pc.equal(pc.list_value_length(result["_reasons"]), 0)
        valid = result.filter(ok).drop_columns(["_reasons", "_record"])
        return valid, result.filter(pc.invert(ok)).select(["_source_line", "_record", "_reasons"])

    best("of which: filter into valid and rejected", split)

    record = re.search(r"CAST\(json_object\(.*?\) AS VARCHAR\) AS _record", query.sql)
    assert record is not None, "the query no longer builds _record with json_object"
    head = query.sql[: query.sql.index(", list_filter([")]
    chunked = pa.Table.from_batches(batch.combine_chunks().to_batches(max_chunksize=65_536))
    variants: dict[str, tuple[str, dict[str, Any], pa.Table]] = {
        "variant: same query, batch registered as 64k-row record batches": (
            query.sql,
            query.params,
            chunked,
        ),
        "variant: no _record (JSON text of every row)": (
            query.sql.replace(record.group(0), "NULL::VARCHAR AS _record"),
            query.params,
            batch,
        ),
        "variant: typed columns only (no rules, no _record)": (
            head.replace(record.group(0), "NULL AS _record") + " FROM src",
            query.params,
            batch,
        ),
        "variant: values parsed once, _record only for rejected rows": (
            *_typed_once_sql(contract, file_columns),
            batch,
        ),
        "variant: 64k-row record batches + parsed once, _record for rejected only": (
            *_typed_once_sql(contract, file_columns),
            chunked,
        ),
    }
    # DuckDB does not keep the input order when it runs this query on several threads.
    reference = result.sort_by("_source_line")
    ref_bad = pc.greater(pc.list_value_length(reference["_reasons"]), 0)
    for label, (sql, params, data) in variants.items():
        out = best(label, functools.partial(execute, sql, params, data))
        if "_reasons" not in out.column_names:
            continue
        out = out.sort_by("_source_line")
        bad = pc.greater(pc.list_value_length(out["_reasons"]), 0)
        same = out["_reasons"].equals(reference["_reasons"])
        if out["_record"].null_count < out.num_rows:  # the variant builds records
            same = same and out.filter(bad)["_record"].equals(reference.filter(ref_bad)["_record"])
        if not same:
            raise AssertionError(f"{label}: other reasons or records than run_validation")
    connection.close()
    return timings


def _typed_once_sql(contract: Contract, file_columns: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The validation query with each value parsed once and ``_record`` only if rejected.

    ``compile_validation`` now builds the query that way itself (the typed values in a stage
    of their own, before the rules), so this variant is the query as it is.
    """
    query = compile_validation(contract, file_columns)
    return query.sql, query.params


#: One reader batch validated three ways, for the memory table: (label, query, filter order).
BATCH_VARIANTS = (
    ("run_validation as it is", "as-is", "as-is"),
    ("drop _record/_reasons before filtering the valid rows", "as-is", "drop-first"),
    ("that, and _record built for rejected rows only", "typed-once", "drop-first"),
)


def _batch_variant(
    connection: Any, sql: str, params: dict[str, Any], batch: pa.Table, order: str
) -> tuple[pa.Table, pa.Table]:
    if order == "as-is":
        return run_validation(connection, ValidationQuery(sql, params), batch)
    connection.register("batch", batch)
    try:
        result = connection.sql(sql, params=params).to_arrow_table()
    finally:
        connection.unregister("batch")
    ok = pc.equal(pc.list_value_length(result["_reasons"]), 0)
    valid = result.drop_columns(["_reasons", "_record"]).filter(ok)
    rejected = result.filter(pc.invert(ok)).select(["_source_line", "_record", "_reasons"])
    return valid, rejected


def batch_memory(variant: int, input_path: str, runs: int = 3) -> dict[str, float]:
    """Peak RSS growth and best time of validating one batch; meant for a fresh process.

    The connection is created and warmed up on one row first, so the peak is the batch's.
    """
    label, query_kind, order = BATCH_VARIANTS[variant]
    table = read_ipc(input_path)
    contract = load_contract(SOURCE)
    file_columns = [name for name in table.column_names if name != "_source_line"]
    if query_kind == "as-is":
        query = compile_validation(contract, file_columns)
        sql, params = query.sql, query.params
    else:
        sql, params = _typed_once_sql(contract, file_columns)
    connection = new_connection()
    _batch_variant(connection, sql, params, table.slice(0, 10_000), order)  # warm-up
    peaks, seconds = [], []
    for _ in range(runs):
        gc.collect()
        before = _status_kib("VmRSS")
        _reset_peak()
        started = time.perf_counter()
        valid, rejected = _batch_variant(connection, sql, params, table, order)
        seconds.append(time.perf_counter() - started)
        peaks.append(_status_kib("VmHWM") - before)
        del valid, rejected
    connection.close()
    return {
        "label": label,
        "rows": table.num_rows,
        "arrow_mib": table.nbytes / 2**20,
        "seconds": min(seconds),
        "peak_mib": peaks[0] / 1024,  # the first run: later ones reuse freed memory
        "peaks_mib": [p / 1024 for p in peaks],
    }


def batch_memory_table(rows: int, seed: int = 42) -> list[dict[str, float]]:
    """:func:`batch_memory` of every variant, each in a fresh spawned process."""
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        path = os.path.join(tmp, "batch.arrow")
        write_ipc(orders_batch(rows, seed)[0], path)
        for variant in range(len(BATCH_VARIANTS)):
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                out.append(pool.submit(batch_memory, variant, path).result())
    return out


def profile_ours(rows: int, seed: int = 42) -> str:
    """A pyinstrument profile (text) of ``run_ours`` in reader-sized batches."""
    from pyinstrument import Profiler

    table, _ = orders_batch(rows, seed)
    contract = load_contract(SOURCE)
    profiler = Profiler(interval=0.001)
    profiler.start()
    run_ours(table, contract, reader_batch_rows(table))
    profiler.stop()
    return profiler.output_text(unicode=False, color=False)
