# Setting up the machine: the Debian packages, Rust's cargo-pgrx, and the
# extension installed into the system PostgreSQL. Sourced by run.sh, not
# run. Works as root and as a user with sudo, on a fresh Debian 12.

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PGRX_VERSION=0.18.0
# Local clusters only, so no GSSAPI: libkrb5 aborts a process that exits
# while another of its threads is still connecting (as the route's cache
# listeners may be), failing runs that had passed.
export PGGSSENCMODE=disable
# libclang-dev: pgrx generates its bindings with bindgen.
# python3-psycopg: the non-Rust client test. chromium: the browser check;
# chromium-driver: Selenium's way to drive it, for the demo application.
# python3-pil: the stock Python client test decodes what the route serves.
PACKAGES=(
    build-essential pkg-config sudo ca-certificates
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" libclang-dev
    python3 python3-psycopg python3-venv python3-pil chromium chromium-driver
)
# nodejs, npm: the stock Node.js client test. A Node.js from elsewhere (such
# as NodeSource's, which carries its own npm and conflicts with Debian's
# npm) is used as it is.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)
# Selenium, from PyPI into the venv target/py (which also sees Debian's
# psycopg and Pillow): the demo application's browser test.
SELENIUM_VERSION=4.38.0
# Only ./run.sh bench needs these: the baselines it measures against.
BENCH_PACKAGES=(python3-pil python3-venv libvips42 wrk nginx-light)

step() { printf '\n\033[1m==> %s\033[0m (%s)\n' "$*" "$(date +%T)"; }
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

# target/py, with Selenium at SELENIUM_VERSION: for tests/browser/.
ensure_selenium() {
    if [ ! -x target/py/bin/python ]; then
        /usr/bin/python3 -m venv --system-site-packages target/py
    fi
    target/py/bin/python -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null ||
        target/py/bin/pip install -q "selenium==$SELENIUM_VERSION"
}

# Builds the extension and installs it into the system PostgreSQL, with
# the install scripts of released versions so they can be upgraded from.
install_extension() {
    local flags=(--pg-config "$PG_CONFIG" "$@")
    is_root || flags+=(--sudo)
    (cd extension && cargo pgrx install "${flags[@]}")
    as_root install -m 644 sql/released/pg_avatar--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
}
