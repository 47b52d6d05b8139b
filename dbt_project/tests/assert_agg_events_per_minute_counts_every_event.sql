{{
    config(
        severity='warn',
        fail_calc='coalesce(sum(abs(events_not_counted)), 0)',
        meta={"dagster": {"ref": {"name": "agg_events_per_minute"}}}
    )
}}

-- Windows of agg_events_per_minute whose event count differs from the deduplicated events
-- in stg_user_events: a late event whose window was already closed to late events
-- (older than events_window_grace_minutes before the newest window) is left out of the
-- incremental run. One row per stale window; the failure count (fail_calc) is the number
-- of events the mart does not count, so a warning says how many late events were ignored.
-- A full refresh of agg_events_per_minute counts them all and clears the warning.
with expected as (

    select
        date_trunc('minute', event_timestamp) as window_start,
        event_type,
        count(*)                              as event_count
    from {{ ref('stg_user_events') }}
    group by all

),

actual as (

    select
        window_start,
        event_type,
        event_count
    from {{ ref('agg_events_per_minute') }}

)

select
    coalesce(expected.window_start, actual.window_start)                as window_start,
    coalesce(expected.event_type, actual.event_type)                    as event_type,
    coalesce(expected.event_count, 0)                                   as events_in_staging,
    coalesce(actual.event_count, 0)                                     as events_in_mart,
    coalesce(expected.event_count, 0) - coalesce(actual.event_count, 0) as events_not_counted
from expected
full outer join actual
    on
        expected.window_start = actual.window_start
        and expected.event_type = actual.event_type
where coalesce(expected.event_count, 0) <> coalesce(actual.event_count, 0)
