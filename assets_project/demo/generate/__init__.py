"""Deterministic demo data for the four landing sources of the online shop.

``generate(out, size, seed, files)`` writes file drops that look like what the upstream systems
deliver, including the mess they deliver, into ``out``::

    out/users/users_0001.csv ...              CRM export (CSV)
    out/products/products_0001.csv ...        catalog export (CSV)
    out/orders/orders_0001.csv ...            shop database export (CSV)
    out/user_events/user_events_0001.jsonl ... clickstream (JSON lines)
    out/_manifest.json                        what was written, per source and per file

Scale: ``size`` user events, ``max(250, size // 20)`` users, ``max(250, size // 200)`` products
and ``max(100, size // 10)`` orders. Every source has ``files`` files. The floors keep the
share of invalid rows in each file small (see ``Defects``), so a fresh demo passes the
reject-rate checks of the contracts.

Time
    Nothing depends on the clock: events and order changes fall in 2026-01-01 .. 2026-01-31 UTC
    (file ``i`` of a source covers the ``i``-th of ``files`` equal slices of that month), users
    signed up 2023-01-01 .. 2025-11-30 and products were listed during 2025. The same
    ``(size, seed, files)`` gives byte-identical files; another seed gives other data. Random
    streams are keyed by source, file and chunk, so the output also depends on ``CHUNK_ROWS``.

Formats
    CSV files have a header, ``\\n`` line ends, UTF-8 without BOM, and quote a field only when it
    holds a comma or a quote. CSV timestamps are ``2026-01-05 10:11:12`` (UTC, no zone suffix),
    dates ``2026-01-05``, money has exactly two decimals (``12.50``). Event lines are compact JSON
    objects with the keys ``event_id``, ``user_id``, ``event_type``, ``event_timestamp``
    (``2026-01-05T10:11:12Z``) and ``properties``; purchase events carry ``properties.amount`` as a
    JSON number with two decimals, plus ``product_id``, ``quantity`` and ``currency``.

Versions
    A user's first version is in the file of its id block; about 20 % of users get a tier or
    region change (5 % a second one) in January 2026, written to the same or a later file with a
    later ``updated_at``. About 25 % of products get a price change the same way. Orders are a
    change log: ``pending`` at ``created_at``, then ``paid``, then ``shipped`` and ``delivered``
    (some end ``cancelled`` or ``returned``), one row per status with a strictly later ``updated_at``, each in
    the file whose time slice holds its ``updated_at``; changes after 2026-01-31 are not exported.

Defects (counted per file and kind in the manifest)
    Defects are *extra* rows; no valid record is ever altered or dropped. Every user, product and
    order keeps at least one fully valid version, and every valid order and event references a
    user (and product) that has a valid version. Each kind is present at least once per source
    (``duplicate_across_files`` needs ``files >= 2``); the rates below are per valid row. The
    floors of ``Scale`` keep that minimum from dominating small files: each file of a demo of
    500 events or more has under 5 % invalid rows (the contracts' ``reject_rate.warn_above``)::

    duplicate_in_file       0.5 %  a valid line repeated a few lines later in the same file
    duplicate_across_files  0.3 %  a valid line of an earlier file repeated in a later file
    null_required           0.3 %  a required field empty (CSV) or null / missing (JSON)
    wrong_type              0.3 %  user_id "abc" or 12.5, quantity "2.5", unit_price "12,50",
                                   timestamp "2026-13-45 25:61:00", date "2025-02-30", ...
                                   (DuckDB's TRY_CAST('2.5' AS INTEGER) gives 3: integer
                                   checks need more than a cast)
    out_of_range            0.2 %  quantity 0 / -1 / 5000, price or amount < 0 or > 100000,
                                   product name over 200 or e-mail over 254 characters
    bad_pattern             0.2 %  e-mail without "@", dot or with a space, event_id that is no
                                   lower-case UUID (users and user_events only)
    unknown_enum            0.2 %  tier "platinum", status "lost", event_type "hover", ...
    malformed_json          0.1 %  a JSON line cut off in the middle (user_events only)
    non_object_json         0.1 %  a valid JSON line that is no object: [1,2], "x", 42
    late_event              0.5 %  of the last events file: valid events whose
                                   event_timestamp lies 2-10 days before that file's time slice

    An invalid CSV row is a copy of the first version of an existing record (each record is used
    at most once per kind) with one field broken and an ``updated_at`` (for orders also
    ``created_at``) *earlier* than every valid version of that record, so it can never win a
    "newest version" merge even if a check misses it. Invalid events get fresh event ids. With
    ``files=1`` the late events fall into 2025-12-22 .. 2025-12-30. Only duplicates and late events
    are valid records; ``invalid_rows`` in the manifest counts the rest.

Size
    Entities and their versions are numpy arrays (about 60 bytes per order version); lines are
    built with pyarrow compute in chunks of ``CHUNK_ROWS`` rows and written straight from the Arrow
    buffers, so 10 million events take about 15 s and stay around 0.5 GB of memory.

Modules
    ``vocabulary``  time span, sources, defect kinds and rates, enums, name parts, ``Scale``
    ``formatting``  values as text: Arrow arrays for valid rows, scalars for single invalid rows
    ``world``       random streams, time slices, the entities and their valid versions
    ``records``     the lines of the valid rows of each source
    ``defects``     the invalid lines of each source
    ``writing``     where the defects go, and each file with its extras mixed in
    ``run``         ``generate``: parameters, every source, the manifest
    ``variants``    late, shrunken and null-spiked batches, made from the written files
    ``cli``         the ``generate`` command of ``python -m assets_project.demo``

    ``CHUNK_ROWS`` is read from ``vocabulary`` at run time: set it there, not here.
"""

from __future__ import annotations

from assets_project.demo.generate.run import GenerationReport, generate, output_paths
from assets_project.demo.generate.variants import Variants
from assets_project.demo.generate.vocabulary import (
    BAD_PATTERN,
    BASE_DATE,
    BASE_S,
    CATEGORIES,
    CHUNK_ROWS,
    CSV_TIMESTAMP_FORMAT,
    DATE_FORMAT,
    DAYS,
    DEFECT_RATES,
    DUPLICATE_ACROSS_FILES,
    DUPLICATE_IN_FILE,
    END_S,
    EVENT_TIMESTAMP_FORMAT,
    EVENT_TYPES,
    GENERATOR_VERSION,
    INVALID_KINDS,
    LATE_EVENT,
    MALFORMED_JSON,
    MANIFEST_NAME,
    MAX_FILES,
    NON_OBJECT_JSON,
    NULL_REQUIRED,
    ORDERS,
    OUT_OF_RANGE,
    PRODUCTS,
    REGIONS,
    SOURCE_DEFECTS,
    SOURCES,
    SPAN_S,
    STATUSES,
    TIERS,
    UNKNOWN_ENUM,
    USER_EVENTS,
    USERS,
    WRONG_TYPE,
    Scale,
)

__all__ = [
    "BAD_PATTERN",
    "BASE_DATE",
    "BASE_S",
    "CATEGORIES",
    "CHUNK_ROWS",
    "CSV_TIMESTAMP_FORMAT",
    "DATE_FORMAT",
    "DAYS",
    "DEFECT_RATES",
    "DUPLICATE_ACROSS_FILES",
    "DUPLICATE_IN_FILE",
    "END_S",
    "EVENT_TIMESTAMP_FORMAT",
    "EVENT_TYPES",
    "GENERATOR_VERSION",
    "INVALID_KINDS",
    "LATE_EVENT",
    "MALFORMED_JSON",
    "MANIFEST_NAME",
    "MAX_FILES",
    "NON_OBJECT_JSON",
    "NULL_REQUIRED",
    "ORDERS",
    "OUT_OF_RANGE",
    "PRODUCTS",
    "REGIONS",
    "SOURCES",
    "SOURCE_DEFECTS",
    "SPAN_S",
    "STATUSES",
    "TIERS",
    "UNKNOWN_ENUM",
    "USERS",
    "USER_EVENTS",
    "WRONG_TYPE",
    "GenerationReport",
    "Scale",
    "Variants",
    "generate",
    "output_paths",
]
