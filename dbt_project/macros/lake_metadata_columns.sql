{#
    The lake metadata columns every staging model keeps from its raw table (the ones
    latest_version_per_key orders by), typed; the select list's last items.
#}
{% macro lake_metadata_columns() -%}
    cast(_source as varchar)         as _source,
    cast(_source_line as bigint)     as _source_line,
    cast(_extracted_at as timestamp) as _extracted_at
{%- endmacro %}
