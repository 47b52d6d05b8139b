{#
    The watermark of an incremental model over a model whose rows carry a stamp of when
    they were written: true for the rows written after this model's last build (their
    stamp past the newest one this model stores in the column `stored`, by default
    last_staged_at). An empty model has no watermark: every row is new.
    fct_user_daily_activity selects the groups the rows staged in stg_user_events since
    its last build touch, and its pre-hook (delete_replaced_event_groups) the groups of
    the versions they replaced, by the same test; fct_orders and fct_daily_revenue
    (revenue_days_to_rebuild) use it the same way.
#}
{% macro staged_since_last_build(staged_at, stored='last_staged_at') -%}
{{ staged_at }} > (
    select coalesce(max(loaded.{{ stored }}), timestamp '-infinity')
    from {{ this }} as loaded
)
{%- endmacro %}
