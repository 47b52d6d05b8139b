{{ config(meta={"dagster": {"ref": {"name": "fct_user_daily_activity"}}}) }}

-- Events, purchases and purchase revenue summed over fct_user_daily_activity must equal
-- the totals over the deduplicated events in stg_user_events. Returns a row on mismatch.
with activity as (

    select
        coalesce(sum(total_events), 0)   as total_events,
        coalesce(sum(purchase_count), 0) as purchase_count,
        coalesce(sum(total_revenue), 0)  as total_revenue
    from {{ ref('fct_user_daily_activity') }}

),

events as (

    select
        count(*)                                                        as total_events,
        count(*) filter (where event_type = 'purchase')                 as purchase_count,
        coalesce(sum(amount) filter (where event_type = 'purchase'), 0) as total_revenue
    from {{ ref('stg_user_events') }}

)

select
    activity.total_events   as activity_total_events,
    events.total_events     as events_total_events,
    activity.purchase_count as activity_purchase_count,
    events.purchase_count   as events_purchase_count,
    activity.total_revenue  as activity_total_revenue,
    events.total_revenue    as events_total_revenue
from activity
cross join events
where
    activity.total_events <> events.total_events
    or activity.purchase_count <> events.purchase_count
    or activity.total_revenue <> events.total_revenue
