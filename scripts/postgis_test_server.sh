#!/usr/bin/env bash
# A local PostGIS server for sanigrid's PostGIS tests (tests/test_postgis.py).
# Idempotent: safe to run twice. Needs root (apt-get, su postgres). Prints the URL to export:
#   export SANIGRID_TEST_PG=$(scripts/postgis_test_server.sh | tail -1)
set -euo pipefail

PGVER="${PGVER:-15}"
CLUSTER="${CLUSTER:-main}"
PGPORT="${PGPORT:-5432}"
ROLE="${ROLE:-sanigrid}"
PASSWORD="${PASSWORD:-sanigrid}"
DB="${DB:-sanigrid_test}"

if [ ! -f "/usr/share/postgresql/${PGVER}/extension/postgis.control" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "postgresql-${PGVER}-postgis-3" >&2 \
        || { apt-get update >&2 && apt-get install -y "postgresql-${PGVER}-postgis-3" >&2; }
fi

if ! pg_lsclusters -h | awk -v v="$PGVER" -v c="$CLUSTER" '$1==v && $2==c' | grep -q online; then
    pg_ctlcluster "$PGVER" "$CLUSTER" start >&2
fi

as_pg() { su postgres -c "$1"; }
psql_pg() { as_pg "PGOPTIONS=--client-min-messages=warning psql -p $PGPORT -v ON_ERROR_STOP=1 -qtA $*"; }

for _ in $(seq 1 30); do
    as_pg "pg_isready -q -p $PGPORT" && break
    sleep 0.5
done

if [ "$(psql_pg "-c \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"")" != "1" ]; then
    psql_pg "-c \"CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD' SUPERUSER\"" >&2
fi
if [ "$(psql_pg "-c \"SELECT 1 FROM pg_database WHERE datname='$DB'\"")" != "1" ]; then
    as_pg "createdb -p $PGPORT -O $ROLE $DB" >&2
fi
psql_pg "-d $DB -c \"CREATE EXTENSION IF NOT EXISTS postgis\"" >&2

echo "postgresql://${ROLE}:${PASSWORD}@127.0.0.1:${PGPORT}/${DB}"
