# ./run.sh bench: pg_avatar side by side with libvips, Pillow, a plain
# table and nginx, on a real photograph. Prints a table of medians and
# ratios and writes it to target/bench/results.md (see BENCHMARKS.md).

bench=target/bench
mkdir -p "$bench"
scratch=$(mktemp -d /tmp/pg_avatar_bench.XXXXXX)
chmod 755 "$scratch"

step "fetching the photographs (Debian package lomiri-wallpapers-20.04, CC-BY-SA-3.0)"
if [ ! -f "$bench/photos/Kleiber_by_Lukas_Baubkus.jpg" ]; then
    (cd "$scratch" && apt-get download -q lomiri-wallpapers-20.04 2>/dev/null)
    dpkg-deb -x "$scratch"/lomiri-wallpapers-20.04_*.deb "$scratch/deb"
    mkdir -p "$bench/photos"
    cp "$scratch"/deb/usr/share/backgrounds/*.jpg "$scratch"/deb/usr/share/doc/lomiri-wallpapers-20.04/copyright "$bench/photos/"
fi
photo=$(cd "$bench/photos" && pwd)/Kleiber_by_Lukas_Baubkus.jpg

step "pyvips (libvips' Python binding, from PyPI) in $bench/venv"
if [ ! -x "$bench/venv/bin/python" ]; then
    # System site packages: Pillow and psycopg come from Debian.
    /usr/bin/python3 -m venv --system-site-packages "$bench/venv"
fi
"$bench/venv/bin/python" -c 'import pyvips' 2>/dev/null || "$bench/venv/bin/pip" install -q 'pyvips==3.0.0'

step "building and installing the extension and pg-avatar (release)"
install_extension --release
cargo build --quiet --release -p pg-avatar-server --bin pg-avatar
cargo build --quiet --release -p avatar-pipeline --example render_pixels

step "starting PostgreSQL, pg-avatar serve and nginx"
cluster=$(cluster_dir "$bench/cluster")
rm -rf "${cluster:?}/data"
port=$(free_port 28935)
NGINX_PID=
bench_stop() {
    route_stop
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
    wait 2>/dev/null
    cluster_stop "$cluster"
    rm -rf "$scratch"
}
trap bench_stop EXIT
cluster_start "$cluster" "$port"
admin="host=127.0.0.1 port=$port user=postgres dbname=bench"
"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres bench
cp "$photo" "$scratch/photo.jpg"
"$PG_BIN/psql" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -d "$admin" <<SQL
CREATE EXTENSION pg_avatar;
-- The PNG of a 20 MP photo is over the default 16 MB upload limit.
LOAD 'pg_avatar';
ALTER DATABASE bench SET pg_avatar.max_input_bytes = '64MB';
CREATE ROLE avatar_web LOGIN;
$(readme_grants avatar_reader avatar_web)
SELECT avatar.avatar_set('bench,photo', pg_read_binary_file('$scratch/photo.jpg'));
SQL
id=$("$PG_BIN/psql" --no-psqlrc -At -d "$admin" -c "SELECT avatar.avatar_id('bench,photo')")

route_configure "$scratch" "$port" bench target/release/pg-avatar
route_run
route=$(route_url bench,photo 64)

# nginx serves the very bytes the route serves, with the route's headers.
nginx_port=$(free_port 28975)
mkdir -p "$scratch/www" "$scratch/nginx"
"$PG_BIN/psql" --no-psqlrc -At -d "$admin" -c "SELECT encode(avatar.avatar_get('$id', 64), 'base64')" |
    base64 -d >"$scratch/www/avatar.jpg"
chmod -R a+rX "$scratch/www"
cat >"$scratch/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 2;
pid $scratch/nginx/nginx.pid;
error_log $scratch/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $scratch/nginx/body;
    proxy_temp_path $scratch/nginx/proxy;
    fastcgi_temp_path $scratch/nginx/fastcgi;
    uwsgi_temp_path $scratch/nginx/uwsgi;
    scgi_temp_path $scratch/nginx/scgi;
    types { image/jpeg jpg; }
    server {
        listen 127.0.0.1:$nginx_port;
        root $scratch/www;
        add_header Cache-Control "public, max-age=31536000, immutable";
        add_header Access-Control-Allow-Origin "*";
        add_header X-Content-Type-Options nosniff;
    }
}
NGINX
/usr/sbin/nginx -p "$scratch/nginx" -c "$scratch/nginx/nginx.conf" &
NGINX_PID=$!
for tries in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break
    sleep 0.1
done

step "measuring (about 5 minutes)"
BENCH_DSN="$admin" BENCH_PHOTO="$photo" BENCH_ROUTE="$route" BENCH_NGINX="http://127.0.0.1:$nginx_port/avatar.jpg" \
    BENCH_OUT="$bench/results.md" BENCH_RENDER_PIXELS=target/release/examples/render_pixels PGBENCH="$PG_BIN/pgbench" \
    "$bench/venv/bin/python" scripts/bench.py
assert_no_crash "$cluster"
bench_stop
trap - EXIT
