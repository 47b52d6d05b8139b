-- The floor: the whole pipeline as one hand-written DuckDB script, straight from the files.
--
-- Reads the demo landing drops (users, products, orders as CSV; user_events as JSON lines),
-- applies the rules of assets_project/contracts/raw/*.odcs.yaml with the semantics of
-- assets_project/lib/validation.py, keeps the newest version per key like the dbt staging
-- models and writes the six marts of dbt_project/models/marts as Parquet. No ingestion, no
-- Delta, no dead-letter table, no dbt: the least work that gives the same mart rows.
--
-- The caller sets the variables first: two paths, and the contract enums (lists of VARCHAR, read
-- from the contracts by bench/marts.py: no enum is written here).
--   SET VARIABLE landing = '/path/to/landing';  -- holds users/, products/, orders/, user_events/
--   SET VARIABLE out = '/path/to/out';          -- an existing folder for <mart>.parquet
--   SET VARIABLE user_tiers = [...];            -- users.user_tier
--   SET VARIABLE regions = [...];               -- users.geographic_region
--   SET VARIABLE categories = [...];            -- products.category
--   SET VARIABLE statuses = [...];              -- orders.status
--   SET VARIABLE revenue_statuses = [...];      -- orders.status, enum subset revenue
--   SET VARIABLE event_types = [...];           -- user_events.event_type
--
-- Validation, as in validation.py: a value is missing when empty (read as NULL); integers must
-- match [+-]?[0-9]+ after trim (spaces only) and fit the type; decimals, dates and timestamps
-- are TRY_CASTs of the trimmed text (timestamps read in UTC); varchar values are taken as they
-- are (enum, regex and max_length see the untrimmed text). A JSON line must be valid JSON and an
-- object; each field is json_extract_string of its path, '' counting as missing. A row that
-- breaks any rule is left out. Rows the CSV reader cannot split into the header's fields are
-- left out too (ignore_errors), as the pipeline sends them to the dead-letter table.
--
-- Shortcuts a hand-written script for known drops may take (the pipeline does not):
-- * The CSV columns are declared in the order the demo files have them (the header line is
--   skipped, not matched by name): sniffing each file costs as much as validating all orders
--   at 1e6 events.
-- * Versions: the staging models order them by (updated_at, _extracted_at, _source,
--   _source_line), events by ingestion order. The files carry no ingestion time and DuckDB's
--   readers give no line number, so the newest version is the first by updated_at DESC (users,
--   products, orders), then file name DESC, then the row's values: ties between rows of one
--   file are broken by value, not by line (the demo data has such ties only between identical
--   rows, and an event_id repeats only in identical rows).
--
-- Each source's typed values are a MATERIALIZED CTE: otherwise DuckDB inlines every typed
-- expression into both the filter and the projection above it and evaluates it twice.

SET TimeZone = 'UTC';

-- The text of an integer (the trimmed value when it matches [+-]?[0-9]+; TRY_CAST checks the
-- range), a timestamp read in UTC, and the CSV drops of one source, every column VARCHAR in the
-- declared order, '' read as missing (NULL).
CREATE OR REPLACE TEMP MACRO integer_text(x) AS
    CASE WHEN regexp_full_match(trim(x), '[+-]?[0-9]+') THEN trim(x) END;
CREATE OR REPLACE TEMP MACRO utc(x) AS TRY_CAST(trim(x) AS TIMESTAMPTZ) AT TIME ZONE 'UTC';
CREATE OR REPLACE TEMP MACRO landing_csv(source, column_types) AS TABLE
SELECT * FROM read_csv(
    getvariable('landing') || '/' || source || '/*.csv',
    columns = column_types, header = true, auto_detect = false, delim = ',', quote = '"',
    escape = '"', nullstr = '', allow_quoted_nulls = true, ignore_errors = true,
    filename = true
);

-- users ----------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE users AS
WITH typed AS MATERIALIZED (
    SELECT
        filename AS _file,
        TRY_CAST(integer_text(user_id) AS BIGINT) AS user_id,
        email,
        TRY_CAST(trim(signup_date) AS DATE) AS signup_date,
        user_tier,
        geographic_region,
        utc(updated_at) AS updated_at
    FROM landing_csv('users', {
        'user_id': 'VARCHAR', 'email': 'VARCHAR', 'signup_date': 'VARCHAR',
        'user_tier': 'VARCHAR', 'geographic_region': 'VARCHAR', 'updated_at': 'VARCHAR'
    })
)
SELECT user_id, email, signup_date, user_tier, geographic_region, updated_at
FROM typed
WHERE user_id IS NOT NULL
  AND email IS NOT NULL
  AND regexp_full_match(email, '^[^@\s]+@[^@\s]+\.[^@\s]+$')
  AND length(email) <= 254
  AND signup_date IS NOT NULL
  AND list_contains(getvariable('user_tiers'), user_tier)
  AND list_contains(getvariable('regions'), geographic_region)
  AND updated_at IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY user_id
    ORDER BY updated_at DESC, _file DESC, email DESC, signup_date DESC, user_tier DESC,
        geographic_region DESC
) = 1;

-- products -------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE products AS
WITH typed AS MATERIALIZED (
    SELECT
        filename AS _file,
        TRY_CAST(integer_text(product_id) AS BIGINT) AS product_id,
        "name" AS product_name,
        category,
        TRY_CAST(trim(unit_price) AS DECIMAL(12, 2)) AS unit_price,
        utc(updated_at) AS updated_at
    FROM landing_csv('products', {
        'product_id': 'VARCHAR', 'name': 'VARCHAR', 'category': 'VARCHAR',
        'unit_price': 'VARCHAR', 'updated_at': 'VARCHAR'
    })
)
SELECT product_id, product_name, category, unit_price, updated_at
FROM typed
WHERE product_id IS NOT NULL
  AND product_name IS NOT NULL
  AND length(product_name) <= 200
  AND list_contains(getvariable('categories'), category)
  AND unit_price BETWEEN 0 AND 100000
  AND updated_at IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY product_id
    ORDER BY updated_at DESC, _file DESC, product_name DESC, category DESC, unit_price DESC
) = 1;

-- orders ---------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE orders AS
WITH typed AS MATERIALIZED (
    SELECT
        filename AS _file,
        TRY_CAST(integer_text(order_id) AS BIGINT) AS order_id,
        TRY_CAST(integer_text(user_id) AS BIGINT) AS user_id,
        TRY_CAST(integer_text(product_id) AS BIGINT) AS product_id,
        TRY_CAST(integer_text(quantity) AS INTEGER) AS quantity,
        TRY_CAST(trim(unit_price) AS DECIMAL(12, 2)) AS unit_price,
        status,
        utc(created_at) AS created_at,
        utc(updated_at) AS updated_at
    FROM landing_csv('orders', {
        'order_id': 'VARCHAR', 'user_id': 'VARCHAR', 'product_id': 'VARCHAR',
        'quantity': 'VARCHAR', 'unit_price': 'VARCHAR', 'status': 'VARCHAR',
        'created_at': 'VARCHAR', 'updated_at': 'VARCHAR'
    })
)
SELECT order_id, user_id, product_id, quantity, unit_price, status, created_at, updated_at
FROM typed
WHERE order_id IS NOT NULL
  AND user_id IS NOT NULL
  AND product_id IS NOT NULL
  AND quantity BETWEEN 1 AND 1000
  AND unit_price BETWEEN 0 AND 100000
  AND list_contains(getvariable('statuses'), status)
  AND created_at IS NOT NULL
  AND updated_at IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY order_id
    ORDER BY updated_at DESC, _file DESC, status DESC, created_at DESC, user_id DESC,
        product_id DESC, quantity DESC, unit_price DESC
) = 1;

-- user_events ----------------------------------------------------------------------------------
-- Each line is read as one text field (the unit separator does not occur in JSON text; a line
-- holding one anyway is skipped, as the pipeline dead-letters it). One json_extract_string call
-- with a list of paths parses a line once for all fields (DuckDB evaluates the call once for
-- all uses of f below); a line that is not a JSON object gets f = NULL and fails event_id.
CREATE OR REPLACE TEMP TABLE events AS
WITH lines AS (
    SELECT
        filename AS _file,
        json_extract_string(
            -- Valid JSON whose first non-blank character is '{' is an object.
            CASE WHEN json_valid(line) AND regexp_matches(line, '^[ \t\n\r]*\{') THEN line END,
            [
                '$.event_id', '$.user_id', '$.event_type', '$.event_timestamp', '$.properties',
                '$.properties.amount'
            ]
        ) AS f
    FROM read_csv(
        getvariable('landing') || '/user_events/*.jsonl',
        columns = {'line': 'VARCHAR'}, header = false, auto_detect = false,
        delim = chr(31), quote = '', escape = '', ignore_errors = true, filename = true
    )
),
typed AS MATERIALIZED (
    SELECT
        _file,
        NULLIF(f[1], '') AS event_id,
        TRY_CAST(integer_text(f[2]) AS BIGINT) AS user_id,
        NULLIF(f[3], '') AS event_type,
        utc(f[4]) AS event_timestamp,
        NULLIF(f[5], '') IS NULL OR json_valid(f[5]) AS properties_ok,
        TRY_CAST(trim(f[6]) AS DECIMAL(12, 2)) AS amount,
        NULLIF(f[6], '') IS NULL
            OR TRY_CAST(trim(f[6]) AS DECIMAL(12, 2)) BETWEEN 0 AND 100000 AS amount_ok
    FROM lines
)
SELECT user_id, event_type, event_timestamp, amount
FROM typed
WHERE event_id IS NOT NULL
  AND regexp_full_match(
      event_id, '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  )
  AND user_id IS NOT NULL
  AND list_contains(getvariable('event_types'), event_type)
  AND event_timestamp IS NOT NULL
  AND properties_ok
  AND amount_ok
QUALIFY row_number() OVER (
    PARTITION BY event_id
    ORDER BY _file DESC, user_id DESC, event_type DESC, event_timestamp DESC, amount DESC
) = 1;

-- marts ----------------------------------------------------------------------------------------
COPY users TO (getvariable('out') || '/dim_users.parquet') (FORMAT parquet);

COPY products TO (getvariable('out') || '/dim_products.parquet') (FORMAT parquet);

CREATE OR REPLACE TEMP TABLE fct_orders AS
SELECT
    o.order_id,
    o.user_id,
    o.product_id,
    o.quantity,
    o.unit_price,
    CAST(o.quantity * o.unit_price AS DECIMAL(18, 2)) AS order_amount,
    o.status,
    list_contains(getvariable('revenue_statuses'), o.status) AS is_revenue,
    CAST(o.created_at AS DATE) AS order_date,
    o.created_at,
    o.updated_at,
    u.geographic_region,
    p.category
FROM orders AS o
LEFT JOIN users AS u ON o.user_id = u.user_id
LEFT JOIN products AS p ON o.product_id = p.product_id;

COPY fct_orders TO (getvariable('out') || '/fct_orders.parquet') (FORMAT parquet);

COPY (
    SELECT
        order_date AS revenue_date,
        geographic_region,
        count(*) AS order_count,
        CAST(sum(quantity) AS BIGINT) AS units_sold,
        CAST(sum(order_amount) AS DECIMAL(18, 2)) AS revenue
    FROM fct_orders
    WHERE is_revenue
    GROUP BY order_date, geographic_region
) TO (getvariable('out') || '/fct_daily_revenue.parquet') (FORMAT parquet);

COPY (
    WITH daily AS (
        SELECT
            user_id,
            CAST(event_timestamp AS DATE) AS activity_date,
            count(*) AS total_events,
            count(DISTINCT event_type) AS distinct_event_types,
            count(*) FILTER (WHERE event_type = 'purchase') AS purchase_count,
            CAST(
                coalesce(sum(amount) FILTER (WHERE event_type = 'purchase'), 0)
                AS DECIMAL(18, 2)
            ) AS total_revenue
        FROM events
        GROUP BY user_id, CAST(event_timestamp AS DATE)
    )
    SELECT
        d.user_id,
        d.activity_date,
        d.total_events,
        d.distinct_event_types,
        d.purchase_count,
        d.total_revenue,
        u.user_tier,
        u.geographic_region,
        CAST(d.activity_date - u.signup_date AS INTEGER) AS days_since_signup
    FROM daily AS d
    LEFT JOIN users AS u ON d.user_id = u.user_id
) TO (getvariable('out') || '/fct_user_daily_activity.parquet') (FORMAT parquet);

COPY (
    SELECT
        date_trunc('minute', event_timestamp) AS window_start,
        date_trunc('minute', event_timestamp) + INTERVAL 1 MINUTE AS window_end,
        event_type,
        count(*) AS event_count,
        count(DISTINCT user_id) AS distinct_users,
        CAST(coalesce(sum(amount), 0) AS DECIMAL(18, 2)) AS amount_total
    FROM events
    GROUP BY date_trunc('minute', event_timestamp), event_type
) TO (getvariable('out') || '/agg_events_per_minute.parquet') (FORMAT parquet);
