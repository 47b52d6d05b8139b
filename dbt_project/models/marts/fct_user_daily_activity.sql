-- One row per user and day with at least one event (event time, UTC).
with events as (

    select * from {{ ref('stg_user_events') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

daily as (

    select
        user_id,
        event_date                                      as activity_date,
        count(*)                                        as total_events,
        count(distinct event_type)                      as distinct_event_types,
        count(*) filter (where event_type = 'purchase') as purchase_count,
        cast(
            coalesce(sum(amount) filter (where event_type = 'purchase'), 0)
            as decimal(18, 2)
        )                                               as total_revenue
    from events
    group by user_id, event_date

),

final as (

    select
        daily.user_id,
        daily.activity_date,
        daily.total_events,
        daily.distinct_event_types,
        daily.purchase_count,
        daily.total_revenue,
        users.user_tier,
        users.geographic_region,
        cast(daily.activity_date - users.signup_date as integer) as days_since_signup
    from daily
    left join users
        on daily.user_id = users.user_id

)

select * from final
