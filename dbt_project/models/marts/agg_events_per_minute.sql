{{
    config(
        materialized='incremental',
        unique_key=['window_start', 'event_type'],
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

-- Tumbling one-minute windows of event time, per event_type, over the deduplicated
-- events (a replayed or duplicated event_id counts once).
--
-- Incremental runs recompute only the windows that newly ingested events fall into:
-- events whose _extracted_at is past what this table has seen (minus
-- events_lookback_days, for ingestion commits that finished out of order). A window is
-- recomputed from every event it holds, so a late event corrects its window. Windows
-- that start more than events_window_grace_minutes before the newest window are
-- closed: a later event for them is left to the next full refresh
-- (agg_events_full_refresh_job, daily), and counted until then by the WARN test
-- assert_agg_events_per_minute_counts_every_event.
with events as not materialized (

    select
        event_id,
        event_type,
        user_id,
        amount,
        _extracted_at,
        date_trunc('minute', event_timestamp) as window_start
    from {{ ref('stg_user_events') }}

),

{% if is_incremental() %}
loaded as (

    select
        max(last_extracted_at) as loaded_until,
        max(window_start)      as newest_window
    from {{ this }}

),

touched as (

    select distinct
        events.window_start,
        events.event_type
    from events
    cross join loaded
    where events._extracted_at > coalesce(
        loaded.loaded_until - interval ({{ var('events_lookback_days') | int }}) day,
        timestamp '1970-01-01'
    )
    and events.window_start >= coalesce(
        loaded.newest_window
        - interval ({{ var('events_window_grace_minutes') | int }}) minute,
        timestamp '1970-01-01'
    )

),
{% endif %}

windows as (

    select
        events.window_start,
        events.window_start + interval 1 minute         as window_end,
        events.event_type,
        count(*)                                        as event_count,
        count(distinct events.user_id)                  as distinct_users,
        coalesce(sum(events.amount), 0)::decimal(18, 2) as amount_total,
        max(events._extracted_at)                       as last_extracted_at
    from events
    {% if is_incremental() %}
    inner join touched
        on
            events.window_start = touched.window_start
            and events.event_type = touched.event_type
    {% endif %}
    group by all

)

select * from windows
