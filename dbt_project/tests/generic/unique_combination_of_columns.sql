{#
    Fails for every combination of the given columns that occurs more than once
    (a grain test). Own version of dbt_utils.unique_combination_of_columns, since
    dbt packages are not installed in this project.

    data_tests:
      - unique_combination_of_columns:
          arguments:
            combination_of_columns: [user_id, activity_date]
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns_csv = combination_of_columns | join(', ') -%}

with validation_errors as (

    select
        {{ columns_csv }},
        count(*) as n_rows
    from {{ model }}
    group by {{ columns_csv }}
    having count(*) > 1

)

select * from validation_errors

{% endtest %}
