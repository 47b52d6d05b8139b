{#
    The order dates an incremental build of fct_daily_revenue recomputes: the days of the
    fct_orders rows written after its last build (new orders, new versions, a customer's
    new region, a product's new category) and the days the earlier versions of those
    orders belonged to (stg_orders._replaced_order_dates: a corrected created_at moves an
    order to another day). A day is recomputed for every region, so an order that moved
    to another region leaves its old group too.

    delete_revenue_days_to_rebuild(): the pre-hook that deletes those days first; a group
    whose last revenue order left it has no row to insert, and delete+insert only deletes
    the keys it inserts again.
#}
-- noqa: disable=LT02
{% macro revenue_days_to_rebuild() -%}
    select rebuilt.order_date as revenue_date
    from {{ ref('fct_orders') }} as rebuilt
    where {{ staged_since_last_build('rebuilt.last_built_at', stored='last_built_at') }}
    union
    select unnest(staged._replaced_order_dates) as revenue_date
    from {{ ref('stg_orders') }} as staged
    where
        staged.order_id in (
            select rebuilt.order_id
            from {{ ref('fct_orders') }} as rebuilt
            where
                {{ staged_since_last_build('rebuilt.last_built_at', stored='last_built_at') }}
        )
{%- endmacro %}

{% macro delete_revenue_days_to_rebuild() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where revenue_date in ({{ revenue_days_to_rebuild() }})
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}
