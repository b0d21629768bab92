# ./run.sh test: every test, from unit tests to a real cluster. Sourced by run.sh.

step "formatting"
cargo fmt --all -- --check

step "image pipeline unit tests (no PostgreSQL)"
cargo test -p avatar-pipeline

step "#[pg_test] tests in a pgrx-managed cluster"
pgrx_data=$(mktemp -d /tmp/pg_avatar-pgrx.XXXXXX)
as_root chown postgres: "$pgrx_data"
(cd extension && cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$pgrx_data")
as_root rm -rf "$pgrx_data"

step "installing the extension"
install_extension

step "starting a test cluster"
test_dir=$(cluster_dir target/test-cluster)
rm -rf "${test_dir:?}/data"
port=$(free_port 28815)
trap 'cluster_stop "$test_dir"' EXIT
cluster_start "$test_dir" "$port"
export PG_AVATAR_TEST_CONNINFO="host=127.0.0.1 port=$port user=postgres"
export PG_AVATAR_PG_BINDIR=$PG_BIN

step "integration tests against the cluster"
cargo test -p pg-avatar-tests

step "a client that is not Rust: Python and psycopg"
/usr/bin/python3 tests/python/test_sql.py

assert_no_crash "$test_dir"
cluster_stop "$test_dir"
trap - EXIT
step "all tests passed"
