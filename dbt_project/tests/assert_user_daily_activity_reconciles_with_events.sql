{{ config(meta={"dagster": {"ref": {"name": "fct_user_daily_activity"}}}) }}

-- Events, purchases and purchase revenue summed over fct_user_daily_activity must equal
-- the totals over the deduplicated events in stg_user_events. Returns a row on mismatch.
{% set purchase = "filter (where event_type = 'purchase')" %}
{{ totals_mismatch(
    'activity', ref('fct_user_daily_activity'),
    'events', ref('stg_user_events'),
    {
        'total_events': ['coalesce(sum(total_events), 0)', 'count(*)'],
        'purchase_count': ['coalesce(sum(purchase_count), 0)', 'count(*) ' ~ purchase],
        'total_revenue': [
            'coalesce(sum(total_revenue), 0)', 'coalesce(sum(amount) ' ~ purchase ~ ', 0)'
        ],
    },
) }}
