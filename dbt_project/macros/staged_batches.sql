{#
    Which raw batches an incremental staging model has read, kept beside it in
    <model>__batches (_extracted_at, _source): one row per batch, written by the
    model's post-hook in the transaction of its build.

    unread_batches_since(raw): the _extracted_at of the oldest batch of raw (a relation)
    not recorded yet, as text; 'none' when every batch is recorded; none (no value) when
    there is no record to compare with, so the model falls back to its lookback.

    record_staged_batches(source_name, table_name): the post-hook. It reads the raw
    relation already loaded for this build (by name: calling source() again would load a
    newer version of the Delta table, whose new batches this build has not read); a full
    refresh starts the record over.
    (noqa LT02: sqlfluff expects the lines inside Jinja blocks not to be indented.)
#}
-- noqa: disable=LT02
{% macro staged_batches_relation() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier=this.identifier ~ '__batches'
    )) }}
{%- endmacro %}

{% macro unread_batches_since(raw) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set batches = staged_batches_relation() -%}
    {%- if adapter.get_relation(batches.database, batches.schema, batches.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select coalesce(strftime(min(_extracted_at), '%Y-%m-%d %H:%M:%S.%f'), 'none') from ("
        ~ "select distinct _extracted_at, _source from " ~ raw
        ~ " except select _extracted_at, _source from " ~ batches ~ ")"
    ) -%}
    {{ return(found.columns[0].values()[0]) }}
{%- endmacro %}

{% macro record_staged_batches(source_name, table_name) -%}
    {%- set batches = staged_batches_relation() -%}
    {%- set raw = api.Relation.create(schema=source_name, identifier=table_name) -%}
    create table if not exists {{ batches }} (
        _extracted_at timestamp not null,
        _source varchar not null
    );
    {% if not is_incremental() -%}
    delete from {{ batches }};
    {%- endif %}
    insert into {{ batches }}
    select distinct
        _extracted_at,
        _source
    from {{ raw }}
    except
    select
        _extracted_at,
        _source
    from {{ batches }}
{%- endmacro %}
