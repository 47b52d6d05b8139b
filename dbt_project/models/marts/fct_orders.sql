-- One row per order (current version), enriched with the customer's region and the
-- product's category.
with orders as (

    select * from {{ ref('stg_orders') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        orders.order_id,
        orders.user_id,
        orders.product_id,
        orders.quantity,
        orders.unit_price,
        cast(orders.quantity * orders.unit_price as decimal(18, 2)) as order_amount,
        orders.status,
        orders.status in (
            {{ contract_values_sql('orders', 'status', 'revenue') }}
        )                                                           as is_revenue,
        cast(orders.created_at as date)                             as order_date,
        orders.created_at,
        orders.updated_at,
        users.geographic_region,
        products.category
    from orders
    left join users
        on orders.user_id = users.user_id
    left join products
        on orders.product_id = products.product_id

)

select * from final
