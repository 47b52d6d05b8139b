-- One row per user_id: the newest version from the append-only raw table.
-- Columns and their types: _staging__models.yml (typed_columns casts each raw column).
with source as (

    select {{ typed_columns() }}
    from {{ source('raw', 'users') }}

)

select * from source
{{ latest_version_per_key('user_id', versions=['updated_at']) }}
