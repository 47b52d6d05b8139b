{#
    Keeps one row per key: the newest version. Rows are ordered by the given version
    columns (newest first), then by ingestion: _extracted_at, _source, _source_line, so
    two copies of one version resolve the same way in every model and on every run.
    Use it as the last clause of a staging model's deduplicating select.
#}
{% macro latest_version_per_key(key, versions=[]) -%}
    qualify row_number() over (
        partition by {{ key }}
        order by
{%- for column in versions %} {{ column }} desc,{% endfor %}
            _extracted_at desc, _source desc, _source_line desc
    ) = 1
{%- endmacro %}
