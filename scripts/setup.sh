#!/usr/bin/env bash
# Prepares a machine for `harness` and its example suite:
#   - PostgreSQL 15, Redis and ClickHouse (18.16 on bookworm) binaries from Debian packages
#     (services are not started, and ClickHouse's is not enabled at boot either);
#   - Chromium and Tesseract, with which the HTML report's test looks at the page;
#   - the managed Python environment `.venv` with the example pipeline's requirements;
#   - the managed Airflow `.venv-airflow`: Airflow and its providers, pinned
#     (scripts/requirements-airflow.txt, scripts/constraints-airflow.txt).
# Idempotent and quick when everything is already there. Works from any directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

# The newest PostgreSQL server Debian installed (15 on bookworm, 17 on trixie).
pg_bin_dir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/postgres" ]] && best="$d"
    done
    printf '%s' "$best"
}
PG_BIN_DIR=$(pg_bin_dir)
# Debian puts the server in /usr/sbin, which is not on a normal user's PATH.
clickhouse_server() {
    if command -v clickhouse-server 2>/dev/null; then return 0; fi
    if [[ -x /usr/sbin/clickhouse-server ]]; then printf '%s' /usr/sbin/clickhouse-server; fi
}
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/pipelines/hydramatrices/requirements.txt"
DEV_REQUIREMENTS="$ROOT/scripts/requirements-dev.txt"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- system packages -------------------------------------------------------

SUDO=()
as_root() { "${SUDO[@]}" "$@"; }

missing=()
[[ -n "$PG_BIN_DIR" ]] || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# ClickHouse runs as a private process too (`clickhouse-server --config-file=...`); harness
# talks HTTP to it, so the client package is not needed.
[[ -n "$(clickhouse_server)" ]] || missing+=(clickhouse-server)
# The JDBC driver of a Hive metastore kept in PostgreSQL ([services.hive] database = "postgres").
[[ -f /usr/share/java/postgresql.jar ]] || missing+=(libpostgresql-jdbc-java)
# Spark 4 and the Hive metastore need Java 17 or newer, with the compiler module: harness
# starts the metastore through a small launcher run in Java's source-file mode.
java_major() { java -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p'; }
if ! command -v java >/dev/null 2>&1 || [[ $(java_major) -lt 17 ]] \
    || ! java --list-modules 2>/dev/null | grep -q '^jdk.compiler@'; then
    missing+=(openjdk-17-jdk-headless)
fi
# The HTML report's end-to-end test renders the page in headless Chromium and reads the
# screenshot back with OCR; DejaVu gives Chromium a font to draw the text with.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
[[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian's python3 ships venv's pip bootstrap separately.
    missing+=(python3-venv)
fi

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 \
            || die "need root (or sudo) to install: ${missing[*]}"
        SUDO=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found; install these yourself: ${missing[*]}"

    # No cluster of the system's own and no service start during the install:
    # harness runs private server processes.
    if [[ ! -e /etc/postgresql-common/createcluster.d/harness.conf ]]; then
        as_root mkdir -p /etc/postgresql-common/createcluster.d
        echo 'create_main_cluster = false' \
            | as_root tee /etc/postgresql-common/createcluster.d/harness.conf >/dev/null
    fi
    policy_added=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    remove_policy() { ((policy_added)) && as_root rm -f /usr/sbin/policy-rc.d; policy_added=0; }
    trap remove_policy EXIT

    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Debian bookworm has ClickHouse; some distributions (recent Ubuntu) have none. Without it
    # the local backend cannot run a clickhouse service (the docker backend builds its own
    # image from Debian), which is said below; everything else still installs.
    if [[ " ${missing[*]} " == *" clickhouse-server "* ]] \
        && ! apt-cache show clickhouse-server >/dev/null 2>&1; then
        kept=()
        for m in "${missing[@]}"; do [[ $m == clickhouse-server ]] || kept+=("$m"); done
        missing=("${kept[@]}")
    fi
    if ((${#missing[@]})); then
        say "installing ${missing[*]} (apt-get)"
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    remove_policy
    trap - EXIT
    # Its package enables the system service at boot; harness never uses that service, which
    # would hold ports 8123/9000 after a reboot. update-rc.d disables both the SysV links and
    # the systemd unit.
    if [[ " ${missing[*]} " == *" clickhouse-server "* ]]; then
        as_root update-rc.d clickhouse-server disable >/dev/null 2>&1 || true
    fi

    PG_BIN_DIR=$(pg_bin_dir)
    [[ -n "$PG_BIN_DIR" ]] \
        || die "postgresql installed but no /usr/lib/postgresql/*/bin/{initdb,postgres} found"
    command -v redis-server >/dev/null 2>&1 || die "redis-server installed but not on PATH"
    if [[ " ${missing[*]} " == *" clickhouse-server "* ]]; then
        [[ -n "$(clickhouse_server)" ]] || die "clickhouse-server installed but not found (PATH, /usr/sbin)"
    fi
    command -v chromium >/dev/null 2>&1 || die "chromium installed but not on PATH"
    command -v tesseract >/dev/null 2>&1 || die "tesseract-ocr installed but tesseract is not on PATH"
fi
say "postgresql: $PG_BIN_DIR ($("$PG_BIN_DIR/postgres" --version | awk '{print $3}'))"
say "java: $(java -version 2>&1 | head -n 1)"
say "redis: $(command -v redis-server) ($(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'))"
# clickhouse-server 18.16 has no --version: ask dpkg (e.g. 18.16.1+ds-7.3+b2 -> 18.16.1).
if [[ -n "$(clickhouse_server)" ]]; then
    say "clickhouse: $(clickhouse_server) ($(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null \
        | sed 's/[+~-].*//' || true))"
else
    say "clickhouse: no clickhouse-server package in this machine's sources: scenarios with a clickhouse service need --backend docker"
fi
say "chromium: $(command -v chromium); tesseract: $(command -v tesseract)"

# --- managed Python environment --------------------------------------------

[[ -f "$REQUIREMENTS" ]] || die "missing $REQUIREMENTS"
[[ -f "$DEV_REQUIREMENTS" ]] || die "missing $DEV_REQUIREMENTS"

# Creates the virtualenv DIR when it has no working python, and runs `pip install ARGS` in it
# whenever the files FILES changed since its last install (their hash is kept in DIR).
#   managed_venv DIR WHAT FILES... -- ARGS...
managed_venv() {
    local dir=$1 what=$2 files=() want have
    shift 2
    while [[ $1 != -- ]]; do files+=("$1"); shift; done
    shift
    local name=${dir#"$ROOT"/} stamp="$dir/.requirements.sha256"
    if ! "$dir/bin/python" -c 'import sys' >/dev/null 2>&1; then
        say "creating $name ($(python3 --version 2>&1))"
        rm -rf "$dir"
        python3 -m venv "$dir"
    fi
    want=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
    have=$(cat "$stamp" 2>/dev/null || true)
    if [[ "$want" != "$have" ]]; then
        say "installing $what into $name (pip)"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
        printf '%s\n' "$want" >"$stamp"
    fi
}

managed_venv "$VENV" "${REQUIREMENTS#"$ROOT"/} and ${DEV_REQUIREMENTS#"$ROOT"/}" \
    "$REQUIREMENTS" "$DEV_REQUIREMENTS" -- -r "$REQUIREMENTS" -r "$DEV_REQUIREMENTS"
say "python: .venv ($("$VENV/bin/python" --version 2>&1)), requirements up to date"

# --- managed Airflow ----------------------------------------------------------

# Its own environment: the Spark provider depends on pyspark-client, whose `pyspark` package
# would overwrite the full PySpark of .venv. DAG tasks still find .venv's python and
# spark-submit first on their PATH (the harness puts them there).
AIRFLOW_VENV="$ROOT/.venv-airflow"
AIRFLOW_REQUIREMENTS="$ROOT/scripts/requirements-airflow.txt"
AIRFLOW_CONSTRAINTS="$ROOT/scripts/constraints-airflow.txt"
managed_venv "$AIRFLOW_VENV" "${AIRFLOW_REQUIREMENTS#"$ROOT"/} (about a minute)" \
    "$AIRFLOW_REQUIREMENTS" "$AIRFLOW_CONSTRAINTS" -- \
    -r "$AIRFLOW_REQUIREMENTS" -c "$AIRFLOW_CONSTRAINTS"
say "airflow: .venv-airflow ($("$AIRFLOW_VENV/bin/python" -c 'import importlib.metadata as m; print("apache-airflow", m.version("apache-airflow"))'))"

# --- offline base image of the docker backend -----------------------------------

# No registry can be reached: the images of `--backend docker` are built on a base made here
# with debootstrap. Only where a Docker daemon answers; the local backend needs none of it.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    containers/base/build-base-image.sh
else
    say "docker: no daemon answers; the docker backend's base image is not built"
fi

# --- Rust toolchain ----------------------------------------------------------

if ! command -v cargo >/dev/null 2>&1; then
    hint=""
    [[ -x "$HOME/.cargo/bin/cargo" ]] && hint=" (found $HOME/.cargo/bin/cargo: run 'source \"\$HOME/.cargo/env\"')"
    die "cargo is not on PATH$hint; install a Rust toolchain (rustup) to build harness"
fi
say "cargo: $(cargo --version)"
say "ready"
