-- One row per order_id: the newest version. raw.orders holds one row per order from the
-- PostgreSQL extraction (merged by key) and every version from CSV drops (appended).
-- Columns and their types: _staging__models.yml (typed_columns casts each raw column).
with source as (

    select {{ typed_columns() }}
    from {{ source('raw', 'orders') }}

)

select * from source
{{ latest_version_per_key('order_id', versions=['updated_at']) }}
