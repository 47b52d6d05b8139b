{#
    The (user_id, event_date) keys of the event versions replaced since the calling
    mart's last build: the _replaced_keys of the rows of stg_user_events staged after the
    mart's newest last_staged_at (only in incremental runs; `this` is the mart). A group
    of such a key may have lost an event, or its last one.
#}
{% macro replaced_event_keys() -%}
    select distinct
        replaced.replaced_key.user_id    as user_id,
        replaced.replaced_key.event_date as event_date
    from (
        select unnest(staged._replaced_keys) as replaced_key
        from {{ ref('stg_user_events') }} as staged
        where {{ staged_since_last_build('staged._staged_at') }}
    ) as replaced
{%- endmacro %}
