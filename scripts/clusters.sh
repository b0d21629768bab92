# Running things on that machine, for the tests, the demo, the benchmark
# and the soak: private clusters on loopback, the route, and the gallery a
# browser checks. Sourced by run.sh after setup.sh, not run.

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
# Prepared transactions are on, for the tests of two-phase commit.
cluster_start() {
    local dir=$1 port=$2
    # Pinned, so the cluster never depends on the caller's locale (SQL_ASCII otherwise).
    as_pg_owner "$PG_BIN/initdb" --pgdata "$dir/data" --auth trust --username postgres --no-sync \
        --encoding UTF8 --locale C.UTF-8 >/dev/null
    as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$dir/data" --log "$dir/server.log" --wait --silent \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_prepared_transactions=8" start
}

# standby_start PRIMARY_PORT DIR PORT: a hot standby of the cluster on
# PRIMARY_PORT, streaming from it (pg_basebackup -R).
standby_start() {
    local primary_port=$1 dir=$2 port=$3
    as_pg_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
        --pgdata "$dir/data" --write-recovery-conf --checkpoint fast --no-sync
    as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$dir/data" --log "$dir/server.log" --wait --silent \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_prepared_transactions=8" start
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

# route_configure DIR PG_PORT DB BIN [TOML]: writes DIR/server.toml for
# `pg-avatar serve` of database DB as the role avatar_web, on a free port,
# with TOML added to the top level. Sets ROUTE_PORT and ROUTE_URL; route_url
# works from here on, and route_run starts the server.
route_configure() {
    local dir=$1 pg_port=$2 db=$3 bin=$4 extra=${5:-}
    ROUTE_DIR=$dir ROUTE_BIN=$bin ROUTE_DB=$db
    ROUTE_ADMIN="host=127.0.0.1 port=$pg_port user=postgres dbname=$db"
    ROUTE_PORT=$(free_port 28855)
    ROUTE_URL="http://127.0.0.1:$ROUTE_PORT"
    ROUTE_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    cat >"$dir/server.toml" <<TOML
listen = "127.0.0.1:$ROUTE_PORT"
public_url = "$ROUTE_URL"
$extra

[[databases]]
name = "$db"
url = "host=127.0.0.1 port=$pg_port user=avatar_web dbname=$db connect_timeout=2"
secret = "$ROUTE_SECRET"
TOML
}

# route_url RESOURCE SIZE: the public URL of RESOURCE's avatar at SIZE.
route_url() {
    PG_AVATAR_SECRET=$ROUTE_SECRET "$ROUTE_BIN" url --database "$ROUTE_DB=$ROUTE_ADMIN" \
        --public-url "$ROUTE_URL" --size "$2" "$1"
}

# route_run [SERVE_ARGS...]: starts the configured server, logging to
# ROUTE_DIR/serve.log, and waits until it listens. Sets ROUTE_PID.
route_run() {
    "$ROUTE_BIN" serve --config "$ROUTE_DIR/server.toml" "$@" 2>"$ROUTE_DIR/serve.log" &
    ROUTE_PID=$!
    await_listening "$ROUTE_PID" "$ROUTE_PORT" "$ROUTE_DIR/serve.log" "pg-avatar serve"
}

route_stop() {
    stop_server "${ROUTE_PID:-}"
    ROUTE_PID=
}

# await_listening PID PORT LOG WHAT: returns once PID listens on loopback
# PORT; dies showing LOG if it exits first or takes over 10 seconds.
await_listening() {
    local pid=$1 port=$2 log=$3 what=$4 tries
    for tries in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    die "$what did not start: see $log"
}

# stop_server PID: stops a server this script started, if any.
stop_server() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# The README's GRANT statements for ROLE (its "Privileges" section), made
# to AS instead: the role the README recommends is the one the route runs
# as here, so the two cannot drift apart.
readme_grants() {
    python3 - "$1" "$2" README.md <<'PY'
import sys
role, target, readme = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
block = readme.split("\n## Privileges", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
sql = "\n".join(l for l in block.splitlines() if not l.lstrip().startswith("--"))
for statement in (" ".join(s.split()) for s in sql.split(";")):
    if statement.startswith("GRANT ") and statement.endswith(f" TO {role}"):
        print(statement[: -len(role)] + target + ";")
PY
}

# gallery_start CLUSTER_PORT DB BIN DIR: fills DB from the demo's sample
# uploads with `pg-avatar import`, serves it with the Libravatar route on,
# as a role that may only read avatars, and writes DIR/index.html showing
# every avatar at several sizes. Sets GALLERY_URL and GALLERY_PORT.
GALLERY_SIZES=(32 64 128 256)
gallery_start() {
    local pg_port=$1 db=$2 bin=$3 dir=$4
    local admin="host=127.0.0.1 port=$pg_port user=postgres dbname=$db"
    { echo "DROP ROLE IF EXISTS avatar_web; CREATE ROLE avatar_web LOGIN;"
      readme_grants avatar_reader avatar_web; } |
        "$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$admin"
    "$bin" import "$dir/uploads" --database-url "$admin" || true  # users,5 is broken on purpose
    route_configure "$dir" "$pg_port" "$db" "$bin" "$(printf '[libravatar]\ndatabase = "%s"' "$db")"
    {
        echo '<!doctype html><meta charset="utf-8"><title>pg_avatar demo</title>'
        echo '<style>body{font:15px sans-serif;margin:2em}figure{display:inline-block;margin:6px;text-align:center;vertical-align:bottom}img{display:block}</style>'
        echo '<h1>pg_avatar</h1><p>Each avatar at several sizes, served by <code>pg-avatar serve</code> from PostgreSQL.</p>'
        local resource size url
        for resource in users,1 users,2 users,3 users,4; do
            echo "<h2>$resource</h2>"
            for size in "${GALLERY_SIZES[@]}"; do
                url=$(route_url "$resource" "$size")
                echo "<figure><img src=\"$url\" data-size=\"$size\" alt=\"$resource at $size px\"><figcaption>$size px</figcaption></figure>"
            done
        done
        # The page checks itself: every image must decode at exactly its size.
        cat <<'HTML'
<p id="check" data-result="pending">checking…</p>
<script>
addEventListener('load', () => {
  const images = [...document.images];
  const wrong = images.filter(i => !i.complete || i.naturalWidth != i.dataset.size || i.naturalHeight != i.dataset.size);
  const check = document.getElementById('check');
  check.dataset.result = wrong.length ? 'fail' : 'ok';
  check.textContent = wrong.length
    ? 'wrong: ' + wrong.map(i => `${i.alt} is ${i.naturalWidth}x${i.naturalHeight}`).join(', ')
    : `all ${images.length} images decoded at their sizes`;
});
</script>
HTML
    } >"$dir/index.html"
    route_run --index "$dir/index.html"
    GALLERY_PORT=$ROUTE_PORT
    GALLERY_URL="$ROUTE_URL/"
}

gallery_stop() { route_stop; }

# What a person would see: headless Chromium renders the gallery, whose
# script reports whether every image decoded at its natural size.
# It also saves a screenshot beside the page ($1/gallery.png).
gallery_check_in_browser() {
    local dir=$1 profile dom
    profile=$(mktemp -d)
    local browser=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile"
        --virtual-time-budget=10000)
    dom=$("${browser[@]}" --dump-dom "$GALLERY_URL" 2>/dev/null)
    "${browser[@]}" --window-size=1000,1400 --screenshot="$dir/gallery.png" "$GALLERY_URL" >/dev/null 2>&1 || true
    rm -rf "$profile"
    local verdict
    verdict=$(grep -o '<p id="check"[^<]*' <<<"$dom" || true)
    echo "browser: ${verdict#*>}"
    grep -q 'data-result="ok"' <<<"$verdict"
}

# demo_app_start PG_PORT DB BIN DIR: serves the demo application
# (pg-avatar-demo: diesel-avatar, axum and pg-avatar-server's routes in one
# process) over database DB, which must have pg_avatar, on a free port,
# logging to DIR/demo-app.log, and waits until it listens. Sets
# DEMO_APP_URL, DEMO_APP_DSN and DEMO_APP_PID.
demo_app_start() {
    local pg_port=$1 db=$2 bin=$3 dir=$4 port
    mkdir -p "$dir"
    port=$(free_port "${DEMO_APP_PORT:-28875}")
    DEMO_APP_URL="http://127.0.0.1:$port"
    DEMO_APP_DSN="host=127.0.0.1 port=$pg_port user=postgres dbname=$db"
    PG_AVATAR_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n') \
        "$bin" --database-url "$DEMO_APP_DSN" --listen "127.0.0.1:$port" 2>"$dir/demo-app.log" &
    DEMO_APP_PID=$!
    await_listening "$DEMO_APP_PID" "$port" "$dir/demo-app.log" pg-avatar-demo
}

demo_app_stop() {
    stop_server "${DEMO_APP_PID:-}"
    DEMO_APP_PID=
}

# What a person would do with the demo application, in headless Chromium
# driven by Selenium (tests/browser/test_demo.py): upload, crop, refused
# files, Libravatar, placeholders. Screenshots go to target/demo-screenshots/.
demo_app_check_in_browser() {
    ensure_selenium
    DEMO_URL=$DEMO_APP_URL DEMO_DSN=$DEMO_APP_DSN DEMO_SCREENSHOTS=target/demo-screenshots \
        target/py/bin/python tests/browser/test_demo.py
}
