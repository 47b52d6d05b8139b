-- Current state of every customer (one row per user_id).
with users as (

    select * from {{ ref('stg_users') }}

),

final as (

    select
        user_id,
        email,
        signup_date,
        user_tier,
        geographic_region,
        updated_at
    from users

)

select * from final
