#!/usr/bin/env bash
# Build the base image harness-base:bookworm without any image registry:
# debootstrap a minimal Debian bookworm from the machine's own Debian mirror,
# then `docker import` the root file system.
#
# Usage: containers/base/build-base-image.sh [--force]
#   --force   rebuild even when the image already exists
#
# Environment:
#   HARNESS_DEBIAN_MIRROR            Debian mirror (default: the machine's apt sources)
#   HARNESS_DEBIAN_SECURITY_MIRROR   security mirror (default: the machine's apt sources,
#                                    else <mirror>-security)
#   HARNESS_BASE_IMAGE               image name (default: harness-base:bookworm)
#   HARNESS_BUILD_DIR                where the scratch root file system goes (default: /var/tmp)
set -euo pipefail

IMAGE=${HARNESS_BASE_IMAGE:-harness-base:bookworm}
SUITE=bookworm
FORCE=0

for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "base-image: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

start=$(date +%s)
say() { echo "base-image: $*"; }
die() { echo "base-image: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker engine not reachable"

OLD_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "$FORCE" -eq 0 ] && [ -n "$OLD_ID" ]; then
    say "$IMAGE exists, nothing to do (use --force to rebuild)"
    exit 0
fi



# --- the mirror: from the environment, else from this machine's apt sources --------------
# Prints "URI SUITE" for every enabled `deb` source (deb822 *.sources and one-line *.list).
list_apt_sources() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        awk 'BEGIN { RS = ""; FS = "\n" }
        {
            types = ""; uris = ""; suites = ""; enabled = "yes"
            for (i = 1; i <= NF; i++) {
                line = $i
                if (line ~ /^[ \t]*#/) continue
                if (match(line, /^[A-Za-z-]+:/)) {
                    key = tolower(substr(line, 1, RLENGTH - 1))
                    val = substr(line, RLENGTH + 1)
                    gsub(/^[ \t]+|[ \t]+$/, "", val)
                    if (key == "types") types = val
                    else if (key == "uris") uris = val
                    else if (key == "suites") suites = val
                    else if (key == "enabled") enabled = tolower(val)
                }
            }
            if (enabled == "no" || types !~ /(^| )deb( |$)/) next
            nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
            for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) print u[a], s[b]
        }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
    done
}

MIRROR=${HARNESS_DEBIAN_MIRROR:-}
SECURITY_MIRROR=${HARNESS_DEBIAN_SECURITY_MIRROR:-}
if [ -z "$MIRROR" ] || [ -z "$SECURITY_MIRROR" ]; then
    sources=$(list_apt_sources || true)
    [ -n "$MIRROR" ] || MIRROR=$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$sources")
    [ -n "$SECURITY_MIRROR" ] || SECURITY_MIRROR=$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$sources")
fi
[ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in /etc/apt/sources*; set HARNESS_DEBIAN_MIRROR"
MIRROR=${MIRROR%/}
if [ -z "$SECURITY_MIRROR" ]; then
    case "$MIRROR" in
        */debian) SECURITY_MIRROR=${MIRROR}-security ;;
        *) SECURITY_MIRROR=${MIRROR%/*}/debian-security ;;
    esac
fi
SECURITY_MIRROR=${SECURITY_MIRROR%/}
say "building $IMAGE from $MIRROR (security: $SECURITY_MIRROR)"

# --- debootstrap ---------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -f "$KEYRING" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debian-archive-keyring >/dev/null
fi

WORK=$(mktemp -d "${HARNESS_BUILD_DIR:-/var/tmp}/harness-base.XXXXXX")
ROOTFS=$WORK/rootfs
cleanup() {
    # debootstrap unmounts what it mounts, but not when it is interrupted
    local m
    if [ -d "$ROOTFS" ]; then
        awk -v r="$ROOTFS" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

t0=$(date +%s)
if ! debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 30 "$WORK/debootstrap.log" >&2
    [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
fi
say "debootstrap done in $(( $(date +%s) - t0 ))s"

# --- configure the root file system the way Debian's own container images are --------------
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::GzipIndexes "true";' >"$ROOTFS/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$ROOTFS/etc/apt/apt.conf.d/docker-autoremove-suggests"
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
# A mirror that serves a frozen snapshot has Release files past their Valid-Until date; this
# machine's apt is told to accept them, so the image's apt must be too.
if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
    cat >"$ROOTFS/etc/apt/apt.conf.d/docker-snapshot" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
EOF
fi
echo 'force-unsafe-io' >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
# package installs must not try to start services
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

# --- trim: caches, lists, logs, docs (as the dpkg excludes above will for later installs) ----
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/var/lib/dpkg/*-old "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS/debootstrap"
find "$ROOTFS/var/log" -type f -exec truncate -s 0 {} +
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOTFS"/usr/share/{man,info,groff,linda,lintian,locale}/*
# Empty man sections stay: update-alternatives (e.g. Java's postinst) fails on a missing man1.
mkdir -p "$ROOTFS"/usr/share/man/man{1..9}
# docker provides these at run time
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"
[ -f "$ROOTFS/etc/machine-id" ] && : >"$ROOTFS/etc/machine-id"

# --- import ---------------------------------------------------------------------------------
t0=$(date +%s)
size=$(du -sm "$ROOTFS" | cut -f1)
tar --numeric-owner --xattrs -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.opencontainers.image.title=harness-base' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase, debootstrapped from $MIRROR\"" \
    --message "debootstrap --variant=minbase $SUITE from $MIRROR" \
    - "$IMAGE" >/dev/null
say "imported $IMAGE (${size} MB root file system) in $(( $(date +%s) - t0 ))s"
# The image this one replaced: remove it unless images built on it still need it.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    if docker image rm "$OLD_ID" >/dev/null 2>&1; then
        say "removed the previous $IMAGE (${OLD_ID#sha256:})"
    fi
fi
say "done in $(( $(date +%s) - start ))s"
