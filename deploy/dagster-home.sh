#!/bin/sh
# Writes $DAGSTER_HOME/dagster.yaml: the project's dagster.yaml followed by the parts that the
# environment selects. Run by `make dagster-home` and by the containers of
# deploy/docker-compose.yml and deploy/ecs/ at start, so that every process of a deployment
# (webserver, daemon, code server, run workers) reads the same instance settings.
#   DAGSTER_STORAGE       sqlite (default) | postgres  -> deploy/dagster.postgres.yaml
#   DAGSTER_COMPUTE_LOGS  local (default)  | s3        -> deploy/dagster.s3-logs.yaml
#   DAGSTER_RUN_LAUNCHER  local (default)  | ecs       -> deploy/ecs/dagster.ecs.yaml
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
storage=${DAGSTER_STORAGE:-sqlite}
logs=${DAGSTER_COMPUTE_LOGS:-local}
launcher=${DAGSTER_RUN_LAUNCHER:-local}
case "$storage" in sqlite|postgres) ;;
    *) echo "DAGSTER_STORAGE must be sqlite or postgres, not '$storage'" >&2; exit 2;; esac
case "$logs" in local|s3) ;;
    *) echo "DAGSTER_COMPUTE_LOGS must be local or s3, not '$logs'" >&2; exit 2;; esac
case "$launcher" in local|ecs) ;;
    *) echo "DAGSTER_RUN_LAUNCHER must be local or ecs, not '$launcher'" >&2; exit 2;; esac
: "${DAGSTER_HOME:?DAGSTER_HOME must be set}"
mkdir -p "$DAGSTER_HOME"
target="$DAGSTER_HOME/dagster.yaml"
partial="$target.partial"
cp "$root/dagster.yaml" "$partial"
append() { printf '\n' >> "$partial" && cat "$root/$1" >> "$partial"; }
if [ "$storage" = postgres ]; then append deploy/dagster.postgres.yaml; fi
if [ "$logs" = s3 ]; then append deploy/dagster.s3-logs.yaml; fi
if [ "$launcher" = ecs ]; then append deploy/ecs/dagster.ecs.yaml; fi
mv "$partial" "$target"
