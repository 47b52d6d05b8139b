-- One row per user_id: the newest version from the append-only raw table.
with source as (

    select
        cast(user_id as bigint)            as user_id,
        cast(email as varchar)             as email,
        cast(signup_date as date)          as signup_date,
        cast(user_tier as varchar)         as user_tier,
        cast(geographic_region as varchar) as geographic_region,
        cast(updated_at as timestamp)      as updated_at,
        cast(_source as varchar)           as _source,
        cast(_source_line as bigint)       as _source_line,
        cast(_extracted_at as timestamp)   as _extracted_at
    from {{ source('raw', 'users') }}

),

deduplicated as (

    select *
    from source
    {{ latest_version_per_key('user_id', versions=['updated_at']) }}

)

select * from deduplicated
