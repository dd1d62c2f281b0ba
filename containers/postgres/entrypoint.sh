#!/bin/sh
# Start PostgreSQL in the foreground as PID 1, initialising $PGDATA first when it is empty.
# Extra arguments are passed to `postgres` (e.g. `-c work_mem=64MB`). POSTGRES_PASSWORD (required)
# is the superuser's password; every login, local or over TCP, needs it (SCRAM).
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
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "harness-postgres: POSTGRES_PASSWORD is not set (the superuser's password)" >&2
        exit 64
    fi
    echo "harness-postgres: initialising $PGDATA"
    # The password reaches initdb through a file only this user can read, removed right after.
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --auth=scram-sha-256 \
        --pwfile="$pwfile" --encoding=UTF8 --locale=C --no-sync --no-instructions >/dev/null ||
        { rm -f "$pwfile"; exit 1; }
    rm -f "$pwfile"
    # initdb's rules cover local and loopback only; published ports arrive from the bridge.
    printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # single-user mode: no server, no socket, a few milliseconds
        echo "CREATE DATABASE \"$POSTGRES_DB\";" |
            postgres --single -j -D "$PGDATA" -c fsync=off postgres >/dev/null
    fi
    echo "harness-postgres: initialised $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
fi

unset POSTGRES_PASSWORD
exec postgres -D "$PGDATA" \
    -c listen_addresses='*' \
    -c port="$POSTGRES_PORT" \
    -c unix_socket_directories=/var/run/postgresql \
    -c fsync=off \
    -c synchronous_commit=off \
    -c full_page_writes=off \
    -c logging_collector=off \
    "$@"
