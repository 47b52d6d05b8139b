{#
    Fails for every value outside [min_value, max_value] (either bound may be left out;
    NULL passes, a not-null constraint or test covers it). Own version of
    dbt_utils.accepted_range, since dbt packages are not installed in this project.
    On a column it checks the column's values; on a model, `expression` names what to
    check, e.g. count(*) for row-count bounds (one row, failing when out of bounds).

    data_tests:
      - accepted_range:
          arguments:
            min_value: 0
#}
{% test accepted_range(model, column_name=none, min_value=none, max_value=none, expression=none) %}

{%- set outside = [] -%}
{%- if min_value is not none -%}
    {%- do outside.append('checked_value < ' ~ min_value) -%}
{%- endif -%}
{%- if max_value is not none -%}
    {%- do outside.append('checked_value > ' ~ max_value) -%}
{%- endif -%}
{%- if not outside -%}
    {{ exceptions.raise_compiler_error('accepted_range needs min_value or max_value') }}
{%- endif %}

with checked as (

    select {{ expression if expression is not none else column_name }} as checked_value
    from {{ model }}

)

select checked_value
from checked
where {{ outside | join(' or ') }}

{% endtest %}
