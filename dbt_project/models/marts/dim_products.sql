-- Current state of every catalog product (one row per product_id).
with products as (

    select * from {{ ref('stg_products') }}

),

final as (

    select
        product_id,
        product_name,
        category,
        unit_price,
        updated_at
    from products

)

select * from final
