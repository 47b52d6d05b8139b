-- One row per order_id: the newest version. raw.orders holds one row per order from the
-- PostgreSQL extraction (merged by key) and every version from CSV drops (appended).
with source as (

    select
        cast(order_id as bigint)           as order_id,
        cast(user_id as bigint)            as user_id,
        cast(product_id as bigint)         as product_id,
        cast(quantity as integer)          as quantity,
        cast(unit_price as decimal(12, 2)) as unit_price,
        cast(status as varchar)            as status,
        cast(created_at as timestamp)      as created_at,
        cast(updated_at as timestamp)      as updated_at,
        {{ lake_metadata_columns() }}
    from {{ source('raw', 'orders') }}

)

select * from source
{{ latest_version_per_key('order_id', versions=['updated_at']) }}
