-- One row per product_id: the newest version from the append-only raw table.
with source as (

    select
        cast(product_id as bigint)         as product_id,
        cast(name as varchar)              as product_name,
        cast(category as varchar)          as category,
        cast(unit_price as decimal(12, 2)) as unit_price,
        cast(updated_at as timestamp)      as updated_at,
        {{ lake_metadata_columns() }}
    from {{ source('raw', 'products') }}

)

select * from source
{{ latest_version_per_key('product_id', versions=['updated_at']) }}
