#!/bin/sh
# Start PostgreSQL in the foreground as PID 1, initialising $PGDATA first when it is empty.
# Extra arguments are passed to `postgres` (e.g. `-c work_mem=64MB`).
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=harness}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PORT:=5432}"

# Started as root (e.g. with a bind-mounted or tmpfs data dir owned by root): fix ownership,
# then drop to the postgres user (initdb and postgres refuse to run as root).
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups /bin/sh "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "harness-postgres: initialising $PGDATA"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --auth=trust \
        --encoding=UTF8 --locale=C --no-sync --no-instructions >/dev/null
    # initdb's trust rules cover local and loopback only; published ports arrive from the bridge.
    printf 'host all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n' >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # single-user mode: no server, no socket, a few milliseconds
        echo "CREATE DATABASE \"$POSTGRES_DB\";" |
            postgres --single -j -D "$PGDATA" -c fsync=off postgres >/dev/null
    fi
    echo "harness-postgres: initialised $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
fi

exec postgres -D "$PGDATA" \
    -c listen_addresses='*' \
    -c port="$POSTGRES_PORT" \
    -c unix_socket_directories=/var/run/postgresql \
    -c fsync=off \
    -c synchronous_commit=off \
    -c full_page_writes=off \
    -c logging_collector=off \
    "$@"
