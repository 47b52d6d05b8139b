{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

-- One row per order (current version), enriched with the customer's region and the
-- product's category.
--
-- Incremental runs rebuild only the orders that changed since the last build: those
-- staged in stg_orders after it (_staged_at past the newest last_staged_at here), and
-- those whose customer's region or product's category in the dimensions differs from
-- the one stored here. Every rebuilt row gets this build's last_built_at, which
-- fct_daily_revenue follows. stg_orders keeps every order, so no row has to be deleted.
{%- set built_at = build_stamp(
    'select max(loaded.last_built_at) from ' ~ this ~ ' as loaded' if is_incremental() else none
) %}
with orders as (

    select * from {{ ref('stg_orders') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

{% if is_incremental() %}
changed as (

    select orders.order_id
    from orders
    where {{ staged_since_last_build('orders._staged_at') }}
    union
    select loaded.order_id
    from {{ this }} as loaded
    left join users
        on loaded.user_id = users.user_id
    where loaded.geographic_region is distinct from users.geographic_region
    union
    select loaded.order_id
    from {{ this }} as loaded
    left join products
        on loaded.product_id = products.product_id
    where loaded.category is distinct from products.category

),
{% endif %}

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
        products.category,
        orders._staged_at                                           as last_staged_at,
        {{ built_at }}                                              as last_built_at
    from orders
    left join users
        on orders.user_id = users.user_id
    left join products
        on orders.product_id = products.product_id
    {% if is_incremental() %}
    where orders.order_id in (select changed.order_id from changed)
    {% endif %}

)

select * from final
