{#
    The select list of a staging model: every column its YAML (_staging__models.yml)
    declares, in that order, cast to the declared data_type, so that each column's type
    is written once. A column is cast from expressions[column] (a SQL expression over the
    raw table) or else from the raw column of the same name. At parse time (execute is
    false) the columns are not known yet and it renders *.
    (noqa LT02: sqlfluff expects the lines inside Jinja blocks not to be indented.)
#}
-- noqa: disable=LT02
{% macro typed_columns(expressions={}) -%}
    {%- if execute -%}
        {%- for column in model.columns.values() -%}
            {%- if not column.data_type -%}
                {{ exceptions.raise_compiler_error(
                    model.name ~ "." ~ column.name ~ " declares no data_type"
                ) }}
            {%- endif %}
            {%- set value = expressions.get(column.name, column.name) %}
        cast({{ value }} as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
        {%- endfor -%}
    {%- else -%}
        *
    {%- endif -%}
{%- endmacro %}
