#!/bin/sh
# Creates (if missing) and migrates the Temporal databases on PostgreSQL.
# Runs in temporalio/admin-tools (docker-compose service temporal-schema), whose
# schema files are those of its Temporal version; the PostgreSQL rehearsal runs
# the same temporal-sql-tool steps with the go.temporal.io/server module's files;
# safe to run again: existing databases are kept and only pending schema
# versions are applied.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT=${DB_PORT:-5432}
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sqltool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}

# Database names from temporal.env (the server's config template reads the same).
for db in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  name=${db%%:*}
  dir=${db#*:}
  if out=$(sqltool --db "$name" create 2>&1); then
    echo "created database $name"
  elif echo "$out" | grep -q "already exists"; then
    echo "database $name exists"
  else
    echo "$out" >&2
    exit 1
  fi
  sqltool --db "$name" setup-schema -v 0.0
  sqltool --db "$name" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
echo "Temporal schema is up to date"
