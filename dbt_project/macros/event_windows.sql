{#
    Helpers of agg_events_per_minute's incremental runs (all three only in incremental
    runs; `this` is the mart).

    replaced_event_days: the days of replaced_event_keys. A window on such a day may have
    lost an event.

    open_windows_start: windows starting before this are closed to late events:
    events_window_grace_minutes before the newest window the mart holds (none: all open).

    delete_emptied_event_windows (pre-hook): deletes the open windows of those days that
    no event of stg_user_events is in any more (a corrected event moved away from a
    window it had alone). delete+insert only deletes the keys the model returns, and an
    empty window returns none; the model recomputes the others.
#}
{% macro replaced_event_days() -%}
select distinct replaced.event_date from ({{ replaced_event_keys() }}) as replaced
{%- endmacro %}

{% macro open_windows_start() -%}
coalesce(
    (select max(loaded_window.window_start) from {{ this }} as loaded_window)
    - interval ({{ var('events_window_grace_minutes') | int }}) minute,
    timestamp '-infinity'
)
{%- endmacro %}

-- noqa: disable=LT02
{% macro delete_emptied_event_windows() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as loaded
    using (
        select
            candidate.window_start,
            candidate.event_type
        from {{ this }} as candidate
        where
            candidate.window_start::date in ({{ replaced_event_days() }})
            and candidate.window_start >= {{ open_windows_start() }}
        except
        select
            date_trunc('minute', staged.event_timestamp),
            staged.event_type
        from {{ ref('stg_user_events') }} as staged
        where staged.event_date in ({{ replaced_event_days() }})
    ) as emptied
    where
        loaded.window_start = emptied.window_start
        and loaded.event_type = emptied.event_type
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}
