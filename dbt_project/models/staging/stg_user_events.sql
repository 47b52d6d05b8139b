{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ record_staged_batches('raw', 'user_events') }}"]
    )
}}

-- One row per event_id: the most recently ingested version, ordered by
-- (_extracted_at, _source, _source_line). An existing row is only replaced by a
-- strictly newer version, so an incremental run yields exactly the rows of a full
-- refresh (but for when they were staged).
-- Incremental runs read the raw batches (by _extracted_at, _source) that no earlier
-- run has read: the post-hook records every batch a run read in
-- stg_user_events__batches, and a run reads raw from the oldest batch not recorded
-- there. A batch whose Delta commit finished after a later batch's (out of order) is
-- still read, and the filter is a constant, which the Delta scan uses to skip the
-- files of older batches. Without that record (a warehouse built before it), a run
-- re-reads the raw rows ingested up to events_lookback_days before the newest one.
-- Every row carries _staged_at, when this model last wrote it (increasing from run to
-- run), and _replaced_keys, the (user_id, event_date) of every version it replaced, so
-- the marts built on it recompute exactly the groups a run added to or took from.
-- Columns and their types: _staging__models.yml (typed_columns casts each raw column).
{%- set raw_events = source('raw', 'user_events') %}
{%- set unread_since = unread_batches_since(raw_events) if is_incremental() else none %}
with source as (

    select {{ typed_columns(expressions={
        'event_date': 'cast(event_timestamp as timestamp)',
        '_staged_at': 'null',
        '_replaced_keys': 'null',
    }) }}
    from {{ raw_events }}
    {% if is_incremental() and unread_since == 'none' %}
    where false  -- every raw batch has been read
    {% elif is_incremental() and unread_since %}
    where _extracted_at >= timestamp '{{ unread_since }}'
    {% elif is_incremental() %}
    where
        _extracted_at >= (  -- noqa: RF02 (the source's column; the subquery is qualified)
            select
                coalesce(
                    max(loaded._extracted_at)
                    - interval ({{ var('events_lookback_days') | int }}) day,
                    timestamp '1970-01-01'
                )
            from {{ this }} as loaded
        )
    {% endif %}

),

deduplicated as (

    select *
    from source as new_version  -- noqa: AL05
    {% if is_incremental() %}
    where
        not exists (
            select 1
            from {{ this }} as loaded
            where
                loaded.event_id = new_version.event_id
                and (loaded._extracted_at, loaded._source, loaded._source_line)
                >= (new_version._extracted_at, new_version._source, new_version._source_line)
        )
    {% endif %}
    {{ latest_version_per_key('event_id') }}

),

{% if is_incremental() %}
replaced as (

    select
        event_id       as replaced_event_id,
        user_id        as replaced_user_id,
        event_date     as replaced_event_date,
        _replaced_keys as replaced_before,
        _staged_at     as replaced_staged_at
    from {{ this }}

),
{% endif %}

staged as (

    -- _staged_at: this run's start (or just after the newest row, if the clock went
    -- back); _replaced_keys: the keys of the version replaced here and of those it had
    -- replaced. typed_columns casts them to their declared types.
    {% if is_incremental() %}
    select {{ typed_columns(expressions={
        '_staged_at': build_stamp('select max(_staged_at) from ' ~ this),
        '_replaced_keys': 'case when replaced_event_id is null then [] else list_distinct('
            ~ 'list_concat(replaced_before, [{user_id: replaced_user_id, '
            ~ 'event_date: replaced_event_date}])) end',
    }) }}
    from deduplicated
    left join replaced
        on deduplicated.event_id = replaced.replaced_event_id
    {% else %}
    select {{ typed_columns(expressions={
        '_staged_at': build_stamp(),
        '_replaced_keys': '[]',
    }) }}
    from deduplicated
    {% endif %}

)

select * from staged
