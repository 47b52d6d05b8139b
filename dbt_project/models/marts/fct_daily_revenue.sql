-- Revenue (paid, shipped and delivered orders) per order date and customer region.
with revenue_orders as (

    select * from {{ ref('fct_orders') }}
    where is_revenue

),

final as (

    select
        order_date                                as revenue_date,
        geographic_region,
        count(*)                                  as order_count,
        cast(sum(quantity) as bigint)             as units_sold,
        cast(sum(order_amount) as decimal(18, 2)) as revenue
    from revenue_orders
    group by order_date, geographic_region

)

select * from final
