{#
    The body of a singular test that reconciles a mart with what it aggregates: one row
    (both sides' totals) when any measure differs. Each side is a name and the relation
    it is read from (a ref, with its where clause if any); measures maps each measure to
    its expression over the left side and over the right side.
    (noqa LT02: sqlfluff expects the lines inside a Jinja loop not to be indented.)
#}
-- noqa: disable=LT02
{% macro totals_mismatch(left, left_from, right, right_from, measures) -%}
with {{ left }} as (

    select
    {%- for measure, sides in measures.items() %}
        {{ sides[0] }} as {{ measure }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ left_from }}

),

{{ right }} as (

    select
    {%- for measure, sides in measures.items() %}
        {{ sides[1] }} as {{ measure }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ right_from }}

)

select
{%- for measure in measures %}
    {{ left }}.{{ measure }} as {{ left }}_{{ measure }},
    {{ right }}.{{ measure }} as {{ right }}_{{ measure }}{{ "," if not loop.last }}
{%- endfor %}
from {{ left }}
cross join {{ right }}
where
{%- for measure in measures %}
    {{ "or " if not loop.first }}{{ left }}.{{ measure }} <> {{ right }}.{{ measure }}
{%- endfor %}
{%- endmacro %}
