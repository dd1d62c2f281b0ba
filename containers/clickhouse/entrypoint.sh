#!/bin/sh
# Start ClickHouse in the foreground as PID 1 (SIGTERM stops it in well under a second).
# CLICKHOUSE_PASSWORD (required) is the password of the one user, CLICKHOUSE_USER (harness);
# it is written to the users file only as its SHA-256. Extra arguments go to clickhouse-server
# after `--`, as `--name=value` overrides of config.xml (e.g. `-- --logger.level=trace`).
set -eu

: "${CLICKHOUSE_USER:=harness}"
CH_CONFIG_DIR=/etc/clickhouse-server
CH_DATA=/var/lib/clickhouse

# Started as root (e.g. with a tmpfs or bind mount owned by root): fix ownership, then drop to
# the clickhouse user (ClickHouse 18.16 would run as root too, but need not).
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$CH_DATA"
    chown clickhouse:clickhouse "$CH_DATA" "$CH_CONFIG_DIR"
    exec setpriv --reuid=clickhouse --regid=clickhouse --init-groups /bin/sh "$0" "$@"
fi

if [ -z "${CLICKHOUSE_PASSWORD:-}" ]; then
    echo "harness-clickhouse: CLICKHOUSE_PASSWORD must be set (the password of user $CLICKHOUSE_USER)" >&2
    exit 2
fi
case "$CLICKHOUSE_USER" in
    *[!A-Za-z0-9_]* | [0-9]*)
        echo "harness-clickhouse: CLICKHOUSE_USER must be a plain identifier, got '$CLICKHOUSE_USER'" >&2
        exit 2 ;;
esac

hash=$(printf '%s' "$CLICKHOUSE_PASSWORD" | sha256sum | cut -d' ' -f1)
unset CLICKHOUSE_PASSWORD
umask 077
cat >"$CH_CONFIG_DIR/users.xml" <<USERS
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <background_pool_size>4</background_pool_size>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <$CLICKHOUSE_USER>
            <password_sha256_hex>$hash</password_sha256_hex>
            <networks>
                <ip>::/0</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </$CLICKHOUSE_USER>
    </users>
    <quotas>
        <default>
        </default>
    </quotas>
</yandex>
USERS
umask 022

cd "$CH_DATA"
exec /usr/sbin/clickhouse-server --config-file="$CH_CONFIG_DIR/config.xml" "$@"
