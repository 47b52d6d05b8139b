{{ config(meta={"dagster": {"ref": {"name": "fct_daily_revenue"}}}) }}

-- Revenue, order count and units in fct_daily_revenue must equal the totals over the
-- revenue orders (is_revenue) in fct_orders. Returns a row on mismatch.
{{ totals_mismatch(
    'daily', ref('fct_daily_revenue'),
    'orders', ref('fct_orders') ~ ' where is_revenue',
    {
        'revenue': ['coalesce(sum(revenue), 0)', 'coalesce(sum(order_amount), 0)'],
        'order_count': ['coalesce(sum(order_count), 0)', 'count(*)'],
        'units_sold': ['coalesce(sum(units_sold), 0)', 'coalesce(sum(quantity), 0)'],
    },
) }}
