{{
    config(
        materialized='incremental',
        unique_key=['revenue_date', 'geographic_region'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=["{{ delete_revenue_days_to_rebuild() }}"]
    )
}}

-- depends_on: {{ ref('stg_orders') }}
-- Revenue (paid, shipped and delivered orders) per order date and customer region.
--
-- Incremental runs recompute only the days that changed since the last build (see
-- revenue_days_to_rebuild: the days of the fct_orders rows written after the newest
-- last_built_at here, and the days their earlier versions belonged to), every region of
-- such a day from all of its orders (it reads the days of replaced versions from
-- stg_orders, hence the dependency above), so the result is the same as a full refresh
-- (tests/defs/dbt/test_incremental_marts.py); the pre-hook first deletes those days.
with orders as (

    select * from {{ ref('fct_orders') }}
    {% if is_incremental() %}
    where order_date in ({{ revenue_days_to_rebuild() }})
    {% endif %}

),

final as (

    select
        order_date                                              as revenue_date,
        geographic_region,
        count(*) filter (where is_revenue)                      as order_count,
        cast(sum(quantity) filter (where is_revenue) as bigint) as units_sold,
        cast(
            sum(order_amount) filter (where is_revenue) as decimal(18, 2)
        )                                                       as revenue,
        max(last_built_at)                                      as last_built_at
    from orders
    group by order_date, geographic_region
    having count(*) filter (where is_revenue) > 0

)

select * from final
