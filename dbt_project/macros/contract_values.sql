{#- Generated from assets_project/contracts/raw/*.odcs.yaml by
    python -m assets_project contracts generate (make dbt-yaml): do not edit by hand.
    The enums of the contracts (and their named enum_subsets), the one place dbt reads them. -#}

{% macro contract_values(source, column, subset=none) %}
  {#- The members of contract enum <source>.<column> (or of its named subset), as a list. -#}
  {%- set enums = {
    'orders': {
      'status': {
        'enum': ['pending', 'paid', 'shipped', 'delivered', 'cancelled', 'returned'],
        'subsets': {
          'revenue': ['paid', 'shipped', 'delivered'],
        },
      },
    },
    'products': {
      'category': {
        'enum': ['electronics', 'books', 'home', 'clothing', 'sports', 'toys', 'beauty', 'grocery'],
        'subsets': {},
      },
    },
    'user_events': {
      'event_type': {
        'enum': ['page_view', 'click', 'purchase', 'signup', 'logout'],
        'subsets': {},
      },
    },
    'users': {
      'user_tier': {
        'enum': ['free', 'basic', 'premium', 'enterprise'],
        'subsets': {},
      },
      'geographic_region': {
        'enum': ['north_america', 'europe', 'asia_pacific', 'latin_america', 'middle_east_africa'],
        'subsets': {},
      },
    },
  } -%}
  {%- set entry = enums.get(source, {}).get(column) -%}
  {%- if entry is not none and subset is not none -%}
    {%- set values = entry['subsets'].get(subset) -%}
  {%- elif entry is not none -%}
    {%- set values = entry['enum'] -%}
  {%- endif -%}
  {%- if values is not defined or values is none -%}
    {{ exceptions.raise_compiler_error(
        'contract_values: the contracts define no enum ' ~ source ~ '.' ~ column
        ~ ('' if subset is none else ' subset ' ~ subset)) }}
  {%- endif -%}
  {{ return(values) }}
{% endmacro %}

{% macro contract_values_sql(source, column, subset=none) %}
  {#- The same members as quoted SQL string literals, for `in (...)`. -#}
  {%- set quoted = [] -%}
  {%- for value in contract_values(source, column, subset) -%}
    {%- do quoted.append("'" ~ value | replace("'", "''") ~ "'") -%}
  {%- endfor -%}
  {{ return(quoted | join(', ')) }}
{% endmacro %}
