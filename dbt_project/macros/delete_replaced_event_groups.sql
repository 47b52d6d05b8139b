{#
    Pre-hook of an incremental mart over stg_user_events keyed by (user_id, <date_column>),
    or, with per_user=false, by a key whose day is that of <date_column>: deletes the
    groups of the event versions replaced since the mart's last build (the _replaced_keys
    of the rows staged after its newest last_staged_at): fct_user_daily_activity the
    (user, day) groups, agg_events_per_minute every window of the day. Such a group may
    have lost its last event, and delete+insert only deletes the keys it inserts again;
    the model recomputes the groups that still have events.
#}
-- noqa: disable=LT02
{% macro delete_replaced_event_groups(date_column, per_user=true) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as loaded
    using (
        select distinct
            replaced.replaced_key.user_id    as user_id,
            replaced.replaced_key.event_date as event_date
        from (
            select unnest(staged._replaced_keys) as replaced_key
            from {{ ref('stg_user_events') }} as staged
            where {{ staged_since_last_build('staged._staged_at') }}
        ) as replaced
    ) as replaced_groups
    where
        {% if per_user -%}
        loaded.user_id = replaced_groups.user_id
        and loaded.{{ date_column }} = replaced_groups.event_date
        {%- else -%}
        cast(loaded.{{ date_column }} as date) = replaced_groups.event_date
        {%- endif %}
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}
