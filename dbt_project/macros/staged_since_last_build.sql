{#
    The watermark of an incremental mart over stg_user_events: true for the staged rows
    written after the mart's last build (their _staged_at past the newest last_staged_at
    the mart stores). The model selects the groups these rows touch and its pre-hook
    (delete_replaced_event_groups) the groups of the versions they replaced, by the same
    test.
#}
{% macro staged_since_last_build(staged_at) -%}
{{ staged_at }} > (select max(loaded.last_staged_at) from {{ this }} as loaded)
{%- endmacro %}
