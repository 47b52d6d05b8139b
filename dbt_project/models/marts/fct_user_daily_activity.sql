{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'activity_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=["{{ delete_replaced_event_groups('activity_date') }}"]
    )
}}

-- One row per user and day with at least one event (event time, UTC).
--
-- Incremental runs recompute only the (user_id, activity_date) groups that changed
-- since the last build: those of the events staged after it (_staged_at past the
-- newest last_staged_at here), those of the versions these events replaced
-- (replaced_event_keys), and every group of a customer whose tier, region or signup date
-- in dim_users differs from the one stored here. A group is recomputed from all of its
-- events, so the result is the same as a full refresh (tests/defs/dbt/
-- test_incremental_marts.py); the pre-hook first deletes the replaced versions' groups,
-- which may have no event left.
with events as not materialized (

    select * from {{ ref('stg_user_events') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

{% if is_incremental() %}
staged as (

    select
        user_id,
        event_date
    from events
    where {{ staged_since_last_build('_staged_at') }}

),

changed_users as (

    select distinct loaded.user_id
    from {{ this }} as loaded
    left join users
        on loaded.user_id = users.user_id
    where
        loaded.user_tier is distinct from users.user_tier
        or loaded.geographic_region is distinct from users.geographic_region
        or loaded.activity_date - loaded.days_since_signup
        is distinct from users.signup_date

),

touched as (

    select
        user_id,
        event_date as activity_date
    from staged
    union
    select
        replaced.user_id,
        replaced.event_date
    from ({{ replaced_event_keys() }}) as replaced
    union
    select
        loaded.user_id,
        loaded.activity_date
    from {{ this }} as loaded
    inner join changed_users
        on loaded.user_id = changed_users.user_id

),
{% endif %}

daily as (

    select
        events.user_id,
        events.event_date                                      as activity_date,
        count(*)                                               as total_events,
        count(distinct events.event_type)                      as distinct_event_types,
        count(*) filter (where events.event_type = 'purchase') as purchase_count,
        cast(
            coalesce(sum(events.amount) filter (where events.event_type = 'purchase'), 0)
            as decimal(18, 2)
        )                                                      as total_revenue,
        max(events._staged_at)                                 as last_staged_at
    from events
    {% if is_incremental() %}
    semi join touched
        on
            events.user_id = touched.user_id
            and events.event_date = touched.activity_date
    {% endif %}
    group by events.user_id, events.event_date

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
        cast(daily.activity_date - users.signup_date as integer) as days_since_signup,
        daily.last_staged_at
    from daily
    left join users
        on daily.user_id = users.user_id

)

select * from final
