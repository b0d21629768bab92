# ./run.sh demo: install pg_avatar on a private cluster under target/, set a
# few avatars from images made here, show what avatar_get returns, then
# serve a gallery of public URLs and the demo application (pg-avatar-demo).

step "building and installing the extension"
install_extension --release

demo=target/demo
mkdir -p "$demo/out"
cargo run --quiet --release -p avatar-pipeline --features samples --example samples -- "$demo/uploads"

step "starting a private cluster"
cluster=$(cluster_dir "$demo/cluster")
rm -rf "${cluster:?}/data"
port=$(free_port 28835)
trap 'cluster_stop "$cluster"' EXIT
cluster_start "$cluster" "$port"
echo "cluster in $cluster, port $port"
psql_demo() { "$PG_BIN/psql" --no-psqlrc --quiet -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql_demo -c "CREATE DATABASE demo"
psql() { psql_demo -d demo -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION pg_avatar"

step "avatar_set: one upload per resource"
# Uploads travel as hex through \copy, so they never pass a command line.
staging="$demo/uploads.tsv"
: >"$staging"
for file in "$demo"/uploads/*; do
    name=$(basename "$file")
    printf '%s\t%s\t%s\n' "${name%.*}" "$name" "$(od -An -v -tx1 "$file" | tr -d ' \n')" >>"$staging"
done
psql <<SQL
CREATE TEMP TABLE upload (resource text, file text, hex text);
\copy upload FROM '$staging'
\echo
\echo 'Each upload, normalised: upright, flattened onto white, centre square, JPEG.'
\echo 'users,5 is a truncated PNG: it gets an SQLSTATE error and writes nothing.'
DO \$\$
DECLARE u record;
BEGIN
    FOR u IN SELECT * FROM upload ORDER BY resource LOOP
        BEGIN
            PERFORM avatar.avatar_set(u.resource, decode(u.hex, 'hex'));
        EXCEPTION WHEN others THEN
            RAISE NOTICE '% (%): % [SQLSTATE %]', u.resource, u.file, SQLERRM, SQLSTATE;
        END;
    END LOOP;
END
\$\$;
SELECT u.file AS upload, octet_length(decode(u.hex, 'hex')) AS upload_bytes,
       a.id, i.width AS master_side, i.bytes AS master_bytes, left(i.sha1, 12) AS sha1
  FROM upload u
  JOIN avatar.avatar a USING (resource)
 CROSS JOIN LATERAL avatar.avatar_info(a.id) i
 ORDER BY u.resource;
SQL

step "avatar_get: any size, quantised, resized in the database and memoized"
psql <<'SQL'
SELECT a.resource, s AS asked, avatar.avatar_size(s) AS served,
       octet_length(avatar.avatar_get(a.id, s)) AS jpeg_bytes
  FROM avatar.avatar a, unnest(ARRAY[16, 45, 64, 130, 512]) s
 ORDER BY a.resource, s;
\echo 'A second call is a cache hit; the cache holds one row per served size:'
SELECT a.resource, count(c.*) AS cached_sizes, string_agg(c.size::text, ', ' ORDER BY c.size) AS sizes
  FROM avatar.avatar a LEFT JOIN avatar.avatar_cache c ON c.avatar_id = a.id
 GROUP BY a.resource ORDER BY a.resource;
\echo 'Out of range sizes are errors:'
\set ON_ERROR_STOP 0
SELECT avatar.avatar_get(id, 4096) FROM avatar.avatar LIMIT 1;
SQL

step "formats and placeholders"
psql <<'SQL'
\echo 'One rendition in each format (PNG is lossless, WebP lossy), each memoized on its own:'
SELECT f AS format, octet_length(avatar.avatar_get(avatar.avatar_id('users,1'), 128, f)) AS bytes
  FROM unnest(ARRAY['jpeg', 'png', 'webp']) f;
\echo 'The avatar, or the initial of the name, in one call:'
SELECT resource, name, avatar.avatar_id(resource) IS NOT NULL AS has_avatar,
       octet_length(avatar.avatar_get_or_default(resource, 64, 'initial', name)) AS bytes
  FROM (VALUES ('users,1', 'Ada Lovelace'), ('users,98', 'Grace Hopper'), ('users,99', 'émile')) v(resource, name);
SQL
for name in Grace Émile; do
    psql -At -c "SELECT encode(avatar.avatar_default('initial', '$name', 128), 'base64')" \
        | base64 -d >"$demo/out/initial-$name.jpg"
done
psql -At -c "SELECT encode(avatar.avatar_get(avatar.avatar_id('users,1'), 256, 'webp'), 'base64')" \
    | base64 -d >"$demo/out/users-1-256.webp"

for resource in users,1 users,2 users,3 users,4; do
    for size in 64 256; do
        psql -At -c "SELECT encode(avatar.avatar_get(avatar.avatar_id('$resource'), $size), 'base64')" \
            | base64 -d >"$demo/out/${resource/,/-}-$size.jpg"
    done
done
step "renditions written to $demo/out/ to look at"
ls -l "$demo/out"

step "serving public URLs with pg-avatar (as a role that may only read avatars)"
cargo build --quiet --release -p pg-avatar-server --bin pg-avatar
trap 'gallery_stop; cluster_stop "$cluster"' EXIT
gallery_start "$port" demo target/release/pg-avatar "$demo"
echo "A few of the URLs (the database segment is a keyed hash, never the name):"
grep -o 'src="[^"]*"' "$demo/index.html" | sed 's/src="//; s/"$//' | head -4 | sed 's/^/  /'

step "the demo application: pg-avatar-demo, on diesel-avatar and axum"
# Its own database: its users table is attached, so it owns every users,N.
cargo build --quiet -p pg-avatar-demo
psql_demo -c "CREATE DATABASE app"
psql_demo -d app -c "CREATE EXTENSION pg_avatar"
trap 'demo_app_stop; gallery_stop; cluster_stop "$cluster"' EXIT
demo_app_start "$port" app target/debug/pg-avatar-demo "$demo"
echo "Create a user, drop a picture on the page, choose the square, save; set an"
echo "address for the Libravatar route; type a name for its initial placeholder."
echo
echo "The gallery of public URLs: $GALLERY_URL"
echo "The demo application:       $DEMO_APP_URL/"
if [ -t 0 ]; then
    read -r -p "Press Enter to stop the servers and the cluster. "
else
    gallery_check_in_browser "$demo"
    demo_app_check_in_browser
    echo "screenshots of the application: target/demo-screenshots/"
fi
demo_app_stop
gallery_stop
cluster_stop "$cluster"
trap - EXIT
