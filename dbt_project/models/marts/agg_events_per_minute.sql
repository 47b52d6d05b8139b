{{
    config(
        materialized='incremental',
        unique_key=['window_start', 'event_type'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=["{{ delete_emptied_event_windows() }}"]
    )
}}

-- Tumbling one-minute windows of event time, per event_type, over the deduplicated
-- events (a replayed or duplicated event_id counts once).
--
-- Incremental runs recompute only the open windows that changed since the last build:
-- those of the events staged after it (_staged_at past the newest last_staged_at
-- here), and every window of a day that a version these events replaced was on
-- (_replaced_keys; the pre-hook deletes those that no event is in any more). A window
-- is recomputed from every event it holds, so a late or corrected event corrects it.
-- Windows that start more than events_window_grace_minutes before the newest window
-- are closed: a later change to them is left to the next full refresh
-- (agg_events_full_refresh_job, daily), and counted until then by the WARN test
-- assert_agg_events_per_minute_counts_every_event. A replay that stages the same
-- events again changes no window. Helpers: macros/event_windows.sql.
with events as not materialized (

    select
        event_id,
        event_type,
        user_id,
        amount,
        event_date,
        _extracted_at,
        _staged_at,
        date_trunc('minute', event_timestamp) as window_start
    from {{ ref('stg_user_events') }}

),

{% if is_incremental() %}
staged as (

    select
        window_start,
        event_type
    from events
    where {{ staged_since_last_build('_staged_at') }}

),

touched as (

    -- The open windows of newly staged events, and of every day a replaced version
    -- was on.
    select
        staged.window_start,
        staged.event_type
    from staged
    where staged.window_start >= {{ open_windows_start() }}
    union
    select
        events.window_start,
        events.event_type
    from events
    where
        events.event_date in ({{ replaced_event_days() }})
        and events.window_start >= {{ open_windows_start() }}

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
        max(events._extracted_at)                       as last_extracted_at,
        max(events._staged_at)                          as last_staged_at
    from events
    {% if is_incremental() %}
    inner join touched
        on
            events.window_start = touched.window_start
            and events.event_type = touched.event_type
    -- The same rows; the day comes first so that the other days' events are left
    -- before their windows are computed and joined (0.5 -> 0.01 s with nothing new, 0.6
    -- -> 0.4 s for 100,000 new events over 1e7, BENCHMARKS.md).
    where
        events.event_date in (
            select distinct touched_day.window_start::date
            from touched as touched_day
        )
    {% endif %}
    group by all

)

select * from windows
