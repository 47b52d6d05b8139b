{#
    Pre-hook of an incremental mart keyed by (user_id, <date_column>) over
    stg_user_events: deletes the groups of the event versions replaced since the mart's
    last build (replaced_event_keys).
    Such a group may have lost its last event, and delete+insert only deletes the keys it
    inserts again; a group that still has events is recomputed by the model.
#}
-- noqa: disable=LT02
{% macro delete_replaced_event_groups(date_column) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as loaded
    using ({{ replaced_event_keys() }}) as replaced_groups
    where
        loaded.user_id = replaced_groups.user_id
        and loaded.{{ date_column }} = replaced_groups.event_date
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}
