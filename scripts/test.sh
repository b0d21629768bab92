# ./run.sh test: every test, from unit tests to a real cluster. Sourced by run.sh.

# Incremental caches only pay off while editing, and on a clean clone they
# take gigabytes of disk; set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "formatting"
cargo fmt --all -- --check

step "clippy, warnings as errors, on every crate"
cargo clippy --workspace --exclude pg_avatar --all-targets --all-features -- -D warnings
(cd extension && cargo clippy --all-targets --features "pg$PG_MAJOR pg_test" -- -D warnings)

step "unit, property, compile-fail and contract tests (no PostgreSQL)"
cargo test

step "#[pg_test] tests in a pgrx-managed cluster"
pgrx_data=$(mktemp -d /tmp/pg_avatar-pgrx.XXXXXX)
# pgrx starts initdb from inside this folder as the invoking user, so a
# non-root user must be able to enter it after it is handed to postgres.
chmod 755 "$pgrx_data"
as_root chown postgres: "$pgrx_data"
(cd extension && cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$pgrx_data")
as_root rm -rf "$pgrx_data"

step "installing the extension"
install_extension

step "starting a test cluster"
test_dir=$(cluster_dir target/test-cluster)
rm -rf "${test_dir:?}/data"
port=$(free_port 28815)
standby_dir=$(cluster_dir target/test-standby)
rm -rf "${standby_dir:?}/data"
restore_dir=$(cluster_dir target/test-restore)
rm -rf "${restore_dir:?}/data"
trap 'demo_app_stop; gallery_stop; cluster_stop "$restore_dir"; cluster_stop "$standby_dir"; cluster_stop "$test_dir"' EXIT
cluster_start "$test_dir" "$port"
standby_port=$(free_port "$port")
standby_start "$port" "$standby_dir" "$standby_port"
# Dumps are restored into a cluster of their own.
restore_port=$(free_port "$standby_port")
cluster_start "$restore_dir" "$restore_port"
export PG_AVATAR_TEST_CONNINFO="host=127.0.0.1 port=$port user=postgres"
export PG_AVATAR_TEST_STANDBY_PORT=$standby_port
export PG_AVATAR_TEST_RESTORE_PORT=$restore_port
export PG_AVATAR_PG_BINDIR=$PG_BIN

step "integration tests against the cluster and its hot standby"
cargo test -p pg-avatar-tests

step "promoting the standby: it memoizes again"
as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$standby_dir/data" --wait --silent promote
cargo test -p pg-avatar-tests -- --ignored standby::after_promotion_it_memoizes
assert_no_crash "$standby_dir"
cluster_stop "$standby_dir"
assert_no_crash "$restore_dir"
cluster_stop "$restore_dir"

step "a client that is not Rust: Python and psycopg"
/usr/bin/python3 tests/python/test_sql.py

step "pg-avatar import, url and serve, seen by headless Chromium"
cargo build -p pg-avatar-server --bin pg-avatar
gallery=target/test-gallery
rm -rf "$gallery"
cargo run --quiet -p avatar-pipeline --features samples --example samples -- "$gallery/uploads"
"$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$PG_AVATAR_TEST_CONNINFO" -c "CREATE DATABASE gallery"
"$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$PG_AVATAR_TEST_CONNINFO dbname=gallery" -c "CREATE EXTENSION pg_avatar"
gallery_start "$port" gallery target/debug/pg-avatar "$gallery"
gallery_check_in_browser "$gallery" || die "the gallery did not render every avatar at its size: see $gallery/"

step "the demo application (pg-avatar-demo), driven by Selenium in headless Chromium"
cargo build -p pg-avatar-demo
"$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$PG_AVATAR_TEST_CONNINFO" -c "CREATE DATABASE demo_app"
"$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$PG_AVATAR_TEST_CONNINFO dbname=demo_app" -c "CREATE EXTENSION pg_avatar"
rm -rf target/demo-screenshots
demo_app_start "$port" demo_app target/debug/pg-avatar-demo target/test-demo-app
demo_app_check_in_browser || die "the demo application failed in the browser: see target/demo-screenshots/ and target/test-demo-app/demo-app.log"
demo_app_stop

step "stock clients against the route: Python's pyLibravatar (federated through DNS SRV) and libgravatar, Node.js's gravatar"
if [ ! -x target/py/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages target/py
fi
target/py/bin/python -c 'import libravatar, dnslib, libgravatar' 2>/dev/null ||
    target/py/bin/pip install -q 'pyLibravatar==2.0.2' 'dnslib==0.9.26' 'libgravatar==1.0.4'
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
export LIBRAVATAR_PORT=$GALLERY_PORT LIBRAVATAR_DSN="$PG_AVATAR_TEST_CONNINFO dbname=gallery"
target/py/bin/python tests/python/test_libravatar.py
target/py/bin/python tests/python/test_stock_clients.py
(cd tests/node && PSQL="$PG_BIN/psql" node --test --test-reporter=spec stock_clients.test.mjs)
unset LIBRAVATAR_PORT LIBRAVATAR_DSN
gallery_stop

assert_no_crash "$test_dir"
cluster_stop "$test_dir"
trap - EXIT
step "all tests passed"
