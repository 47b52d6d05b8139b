-- One row per product_id: the newest version from the append-only raw table.
-- Columns and their types: _staging__models.yml (typed_columns casts each raw column).
with source as (

    select {{ typed_columns(expressions={'product_name': 'name'}) }}
    from {{ source('raw', 'products') }}

)

select * from source
{{ latest_version_per_key('product_id', versions=['updated_at']) }}
