-- One row per user_id: the newest version from the append-only raw table.
with source as (

    select
        cast(user_id as bigint)              as user_id,
        cast(email as varchar)               as email,
        cast(signup_date as date)            as signup_date,
        cast(user_tier as varchar)           as user_tier,
        cast(geographic_region as varchar)   as geographic_region,
        cast(updated_at as timestamp)        as updated_at,
        cast(_source as varchar)             as _source,
        cast(_source_line as bigint)         as _source_line,
        cast(_extracted_at as timestamp)     as _extracted_at
    from {{ source('raw', 'users') }}

),

deduplicated as (

    select *
    from source
    qualify row_number() over (
        partition by user_id
        order by updated_at desc, _extracted_at desc, _source desc, _source_line desc
    ) = 1

)

select * from deduplicated
