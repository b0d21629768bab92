# Set-up shared by ./run.sh demo and ./run.sh test. Sourced, not run.
# Works as root and as a user with sudo, on a fresh Debian 12.

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PGRX_VERSION=0.18.0
# libclang-dev: pgrx generates its bindings with bindgen.
# python3-psycopg: the non-Rust client test.
PACKAGES=(
    build-essential pkg-config sudo ca-certificates
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" libclang-dev
    python3 python3-psycopg
)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

as_root() {
    if is_root; then "$@"; else sudo "$@"; fi
}

# initdb refuses to run as root, so root runs clusters as `postgres`.
as_pg_owner() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    step "installing Debian packages: ${missing[*]}"
    if ! is_root && ! command -v sudo >/dev/null; then
        die "run as root, or install sudo, to get: ${missing[*]}"
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_toolchain() {
    ensure_packages
    command -v cargo >/dev/null || die "cargo not found: install Rust (1.88 or newer) with rustup"
    if ! cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $PGRX_VERSION"; then
        step "installing cargo-pgrx $PGRX_VERSION (about 10 minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
    if ! grep -qs "^pg$PG_MAJOR = \"$PG_CONFIG\"" "$config"; then
        step "pointing pgrx at PostgreSQL $PG_MAJOR"
        cargo pgrx init "--pg$PG_MAJOR=$PG_CONFIG"
    fi
}

# Builds the extension and installs it into the system PostgreSQL.
install_extension() {
    local flags=(--pg-config "$PG_CONFIG" "$@")
    is_root || flags+=(--sudo)
    (cd extension && cargo pgrx install "${flags[@]}")
}

free_port() {
    local port
    for port in $(seq "$1" $(($1 + 100))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
    die "no free port near $1"
}

# A directory the cluster's owner can write: $1 if it can, else a fresh one
# under /tmp (root's home is usually closed to `postgres`).
cluster_dir() {
    mkdir -p "$1"
    if is_root; then
        chown postgres: "$1"
        if ! runuser -u postgres -- test -w "$1"; then
            local tmp
            tmp=$(mktemp -d /tmp/pg_avatar.XXXXXX)
            chown postgres: "$tmp"
            echo "$tmp"
            return
        fi
    fi
    (cd "$1" && pwd)
}

# cluster_start DIR PORT: a private cluster, trusted on loopback only.
cluster_start() {
    local dir=$1 port=$2
    as_pg_owner "$PG_BIN/initdb" --pgdata "$dir/data" --auth trust --username postgres --no-sync >/dev/null
    as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$dir/data" --log "$dir/server.log" --wait --silent \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start
}

cluster_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$dir/data" --mode fast --wait --silent stop || true
}

# A crashed backend shows up only in the server log.
assert_no_crash() {
    if grep -E "terminated by signal|server process .* was terminated" "$1/server.log"; then
        die "a backend crashed: see $1/server.log"
    fi
}
