#!/bin/sh
# The dbt manifest (dbt_project/target/manifest.json) that the Dagster dbt assets are built
# from. Run by `make dbt-manifest` and by deploy/Dockerfile at build time, so that the image and
# the laptop prepare it the same way. Parsed with the paths runs use (LakeResource exports
# LAKE_URI and WAREHOUSE_PATH to dbt), so dbt's partial parsing holds.
#   DATA_DIR        default <repo>/data
#   WAREHOUSE_PATH  default $DATA_DIR/warehouse.duckdb
#   LAKE_URI        default $DATA_DIR/lake
#   DBT             the dbt executable, default `dbt` on PATH
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
data_dir=${DATA_DIR:-$root/data}
WAREHOUSE_PATH=${WAREHOUSE_PATH:-$data_dir/warehouse.duckdb}
LAKE_URI=${LAKE_URI:-$data_dir/lake}
export WAREHOUSE_PATH LAKE_URI
cd "$root/dbt_project"
exec "${DBT:-dbt}" parse --quiet --profiles-dir . --project-dir .
