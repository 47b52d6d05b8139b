{{ config(meta={"dagster": {"ref": {"name": "fct_daily_revenue"}}}) }}

-- Revenue, order count and units in fct_daily_revenue must equal the totals over the
-- revenue orders (is_revenue) in fct_orders. Returns a row on mismatch.
with daily as (

    select
        coalesce(sum(revenue), 0)     as revenue,
        coalesce(sum(order_count), 0) as order_count,
        coalesce(sum(units_sold), 0)  as units_sold
    from {{ ref('fct_daily_revenue') }}

),

orders as (

    select
        coalesce(sum(order_amount), 0) as revenue,
        count(*)                       as order_count,
        coalesce(sum(quantity), 0)     as units_sold
    from {{ ref('fct_orders') }}
    where is_revenue

)

select
    daily.revenue      as daily_revenue,
    orders.revenue     as orders_revenue,
    daily.order_count  as daily_order_count,
    orders.order_count as orders_order_count,
    daily.units_sold   as daily_units_sold,
    orders.units_sold  as orders_units_sold
from daily
cross join orders
where
    daily.revenue <> orders.revenue
    or daily.order_count <> orders.order_count
    or daily.units_sold <> orders.units_sold
