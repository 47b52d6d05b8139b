{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ record_staged_batches('raw', 'orders') }}"]
    )
}}

-- One row per order_id: the newest version. raw.orders holds one row per order from the
-- PostgreSQL extraction (merged by key) and every version from CSV drops (appended).
-- Versions are ordered by (updated_at, _extracted_at, _source, _source_line); an
-- existing row is only replaced by a strictly greater version, so an incremental run
-- yields exactly the rows of a full refresh (but for _staged_at).
-- Incremental runs read only the raw batches (by _extracted_at, _source) that no earlier
-- run has read (see stg_user_events and the staged_batches macros): a merge of the
-- PostgreSQL extraction rewrites the versions it replaces with its own batch's
-- _extracted_at, so the new versions are in unread batches too. Without the record of
-- read batches (a warehouse built before it), a run reads every raw row.
-- Every row carries _staged_at, when this model last wrote it (increasing from run to
-- run), and _replaced_order_dates, the order dates of every version it replaced, so that
-- fct_orders recomputes exactly the orders a run changed and fct_daily_revenue the days
-- they left and entered.
-- Columns and their types: _staging__models.yml (typed_columns casts each raw column).
{%- set raw_orders = source('raw', 'orders') %}
{%- set unread_since = unread_batches_since(raw_orders) if is_incremental() else none %}
with source as (

    select {{ typed_columns(expressions={
        '_staged_at': 'null',
        '_replaced_order_dates': 'null',
    }) }}
    from {{ raw_orders }}
    {% if is_incremental() and unread_since == 'none' %}
    where false  -- every raw batch has been read
    {% elif is_incremental() and unread_since %}
    where _extracted_at >= timestamp '{{ unread_since }}'
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
                loaded.order_id = new_version.order_id
                and (
                    loaded.updated_at,
                    loaded._extracted_at,
                    loaded._source,
                    loaded._source_line
                )
                >= (
                    new_version.updated_at,
                    new_version._extracted_at,
                    new_version._source,
                    new_version._source_line
                )
        )
    {% endif %}
    {{ latest_version_per_key('order_id', versions=['updated_at']) }}

),

{% if is_incremental() %}
replaced as (

    select
        order_id              as replaced_order_id,
        created_at            as replaced_created_at,
        _replaced_order_dates as replaced_before,
        _staged_at            as replaced_staged_at
    from {{ this }}

),
{% endif %}

staged as (

    -- _staged_at: this run's start (or just after the newest row, if the clock went
    -- back); _replaced_order_dates: the order date of the version replaced here and
    -- those it had replaced. typed_columns casts them to their declared types.
    {% if is_incremental() %}
    select {{ typed_columns(expressions={
        '_staged_at': build_stamp('select max(_staged_at) from ' ~ this),
        '_replaced_order_dates': 'case when replaced_order_id is null then [] else '
            ~ 'list_distinct(list_concat(replaced_before, '
            ~ '[cast(replaced_created_at as date)])) end',
    }) }}
    from deduplicated
    left join replaced
        on deduplicated.order_id = replaced.replaced_order_id
    {% else %}
    select {{ typed_columns(expressions={
        '_staged_at': build_stamp(),
        '_replaced_order_dates': '[]',
    }) }}
    from deduplicated
    {% endif %}

)

select * from staged
