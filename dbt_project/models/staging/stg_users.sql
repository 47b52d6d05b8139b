-- One row per user_id: the newest version from the append-only raw table.
with source as (

    select
        cast(user_id as bigint)            as user_id,
        cast(email as varchar)             as email,
        cast(signup_date as date)          as signup_date,
        cast(user_tier as varchar)         as user_tier,
        cast(geographic_region as varchar) as geographic_region,
        cast(updated_at as timestamp)      as updated_at,
        {{ lake_metadata_columns() }}
    from {{ source('raw', 'users') }}

)

select * from source
{{ latest_version_per_key('user_id', versions=['updated_at']) }}
