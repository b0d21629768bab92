# ./run.sh soak [SECONDS]: the route under load while a writer replaces
# avatars and PostgreSQL is restarted halfway through. Prints what it held,
# what it survived and what (if anything) was lost. See RELIABILITY.md.
seconds=${1:-240}
soak=target/soak
rm -rf "$soak" && mkdir -p "$soak"

step "building and installing (release)"
install_extension --release
cargo build --quiet --release -p pg-avatar-server --bin pg-avatar
cargo run --quiet --release -p avatar-pipeline --features samples --example samples -- "$soak/uploads"
rm -f "$soak"/uploads/users,5.*  # the deliberately broken one

cluster=$(cluster_dir "$soak/cluster")
rm -rf "${cluster:?}/data"
port=$(free_port 29035)
WRITER_PID= PROBE_PID= RSS_PID=
soak_stop() {
    route_stop
    for pid in $WRITER_PID $PROBE_PID $RSS_PID; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null || true
    cluster_stop "$cluster"
}
trap soak_stop EXIT
cluster_start "$cluster" "$port"
admin="host=127.0.0.1 port=$port user=postgres dbname=soak"
psql_soak() { "$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$admin" "$@"; }
"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres soak
psql_soak -c "CREATE EXTENSION pg_avatar" -c "CREATE ROLE avatar_web LOGIN"
readme_grants avatar_reader avatar_web | psql_soak
target/release/pg-avatar import "$soak/uploads" --database-url "$admin" >/dev/null
# 100 avatars from the four uploads.
psql_soak -c "SELECT avatar.avatar_set('users,' || i, a.image)
                FROM generate_series(10, 105) i
                JOIN avatar.avatar a ON a.resource = 'users,' || (i % 4 + 1)" >/dev/null
avatars=$(psql_soak -At -c "SELECT count(*) FROM avatar.avatar")

route_configure "$soak" "$port" soak target/release/pg-avatar
RUST_LOG=info route_run

# Every avatar at cached and cold sizes: 64 is warmed below, the rest are
# cold until first asked for (and again after each new image).
urls=$soak/urls.txt
: >"$urls"
for resource in $(psql_soak -At -c "SELECT resource FROM avatar.avatar ORDER BY resource"); do
    url=$(route_url "$resource" 64)
    for size in 32 64 64 64 100 128 200 256 512; do
        echo "${url/s=64/s=$size}" >>"$urls"
    done
done
sleep 1
while read -r url; do curl -s -o /dev/null "$url"; done < <(grep 's=64' "$urls" | sort -u)

# Samplers: the server's RSS each second, and a probe's status each 200 ms.
(while kill -0 "$ROUTE_PID" 2>/dev/null; do
    echo "$(date +%s) $(awk '/VmRSS/ {print $2}' "/proc/$ROUTE_PID/status")"
    sleep 1
done) >"$soak/rss.log" &
RSS_PID=$!
probe_url=$(head -1 "$urls")
(while true; do
    echo "$(date +%s.%N | cut -c1-14) $(curl -s -o /dev/null -m 10 -w '%{http_code}' "$probe_url")"
    sleep 0.2
done) >"$soak/probe.log" &
PROBE_PID=$!
# The writer: a new image for a random avatar every 200 ms.
uploads=("$soak"/uploads/*)
(writes=0 failed=0
while true; do
    upload=${uploads[RANDOM % ${#uploads[@]}]}
    rm -rf "$soak/next" && mkdir "$soak/next"
    ln -s "$(realpath "$upload")" "$soak/next/$((10 + RANDOM % 96)).${upload##*.}"
    if target/release/pg-avatar import "$soak/next" --database-url "$admin" --prefix users, >/dev/null 2>&1; then
        writes=$((writes + 1))
    else
        failed=$((failed + 1))
    fi
    echo "$writes $failed" >"$soak/writer.count"
    sleep 0.2
done) &
WRITER_PID=$!

step "load for $seconds s; PostgreSQL restarts at $((seconds / 2)) s"
SOAK_URLS=$(realpath "$urls") wrk -t2 -c32 -d"${seconds}s" --timeout 5s -s scripts/soak.lua \
    "$ROUTE_URL" >"$soak/wrk.log" 2>&1 &
wrk_pid=$!
sleep $((seconds / 2))
restart_at=$(date +%s)
as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$cluster/data" --mode fast --wait --silent stop
sleep 5
as_pg_owner "$PG_BIN/pg_ctl" --pgdata "$cluster/data" --log "$cluster/server.log" --wait --silent \
    -o "-p $port -k $cluster -c listen_addresses=127.0.0.1 -c fsync=off" start
back_at=$(date +%s)
wait "$wrk_pid"
kill "$WRITER_PID" "$PROBE_PID" 2>/dev/null
wait "$WRITER_PID" "$PROBE_PID" 2>/dev/null || true  # they were killed
WRITER_PID= PROBE_PID=

step "afterwards: every avatar must still be served"
sleep 3
unreadable=0
while read -r url; do
    code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$url")
    [ "$code" = 200 ] || { unreadable=$((unreadable + 1)); echo "  $code $url"; }
done < <(sort -u "$urls")
sql_readable=$(psql_soak -At -c "SELECT count(*) FROM avatar.avatar a WHERE octet_length(avatar.avatar_get(a.id, 48)) > 0")
kill "$RSS_PID" 2>/dev/null; wait "$RSS_PID" 2>/dev/null || true; RSS_PID=

read -r writes failed <"$soak/writer.count"
first_503=$(awk '$2 == 503 {print $1; exit}' "$soak/probe.log")
last_503=$(awk '$2 == 503 {t = $1} END {print t}' "$soak/probe.log")
recovered=$(awk -v t="${last_503:-0}" '$1 > t && $2 == 200 {print $1; exit}' "$soak/probe.log")
rss_early=$(awk 'NR == 10 {print $2}' "$soak/rss.log")
rss_max=$(awk '$2 > m {m = $2} END {print m}' "$soak/rss.log")
rss_end=$(tail -1 "$soak/rss.log" | awk '{print $2}')
panics=$(grep -c "panicked" "$soak/serve.log" || true)
{
    echo "duration:            ${seconds} s, wrk -t2 -c32, $(wc -l <"$urls") URLs over $avatars avatars"
    grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$soak/wrk.log" | sed 's/^ */wrk:                 /'
    echo "probe codes:         $(awk '{print $2}' "$soak/probe.log" | sort | uniq -c | tr '\n' ' ')"
    echo "restart:             down at $restart_at, up at $back_at; probe 503s from ${first_503:-none} to ${last_503:-none}, 200 again at ${recovered:-?}"
    echo "writer:              $writes avatar_set calls committed, $failed failed (while the database was down)"
    echo "server RSS (KiB):    after 10 s $rss_early, max $rss_max, at the end $rss_end"
    echo "server panics:       $panics"
    echo "afterwards:          $(( $(sort -u "$urls" | wc -l) - unreadable )) of $(sort -u "$urls" | wc -l) URLs answered 200; $sql_readable of $avatars avatars readable in SQL"
} | tee "$soak/summary.txt"
assert_no_crash "$cluster"
[ "$unreadable" = 0 ] && [ "$sql_readable" = "$avatars" ] && [ "$panics" = 0 ] || die "the soak lost something: see $soak/"
soak_stop
trap - EXIT
