{#
    The stamp a build puts on every row it writes (stg_*._staged_at,
    fct_orders.last_built_at): the build's start, or just after `newest` (a SQL
    expression: the newest stamp already stored) if the clock went back, so stamps
    increase from build to build and the models downstream can follow them. A full
    build (no `newest`) takes the start.
    (noqa LT02: sqlfluff expects the lines inside Jinja blocks not to be indented.)
#}
-- noqa: disable=LT02
{% macro build_stamp(newest=none) -%}
    {%- if newest is none -%}
        cast(now() as timestamp)
    {%- else -%}
        greatest(cast(now() as timestamp), ({{ newest }}) + interval 1 microsecond)
    {%- endif -%}
{%- endmacro %}
