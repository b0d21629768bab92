-- Helpers for scripts/bench.py, in the benchmark's own scratch database.
-- Each function times its calls inside the backend, one by one.

CREATE TABLE bench_upload (name text PRIMARY KEY, image bytea NOT NULL);
ALTER TABLE bench_upload ALTER COLUMN image SET STORAGE EXTERNAL;

-- The warm-get baseline: the same bytes in an ordinary table.
CREATE TABLE bench_plain (id uuid PRIMARY KEY, image bytea NOT NULL);

-- avatar_set of an upload, n times, in milliseconds per call.
CREATE FUNCTION bench_set(upload text, n int) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
    img bytea := (SELECT image FROM bench_upload WHERE name = upload);
    t timestamptz;
    times float8[] := '{}';
BEGIN
    PERFORM length(img);  -- detoast once, outside the timings
    FOR i IN 1..n LOOP
        t := clock_timestamp();
        PERFORM avatar.avatar_set('bench,upload', img);
        times := times || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
    END LOOP;
    RETURN times;
END $$;

-- avatar_get of a size in a format that is not cached (and, with
-- without_mezzanine, of the 512 px JPEG small sizes are made from), n times.
CREATE FUNCTION bench_cold(avatar uuid, side int, fmt text, n int, without_mezzanine bool)
RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    times float8[] := '{}';
BEGIN
    FOR i IN 1..n LOOP
        DELETE FROM avatar.avatar_cache
         WHERE avatar_id = avatar
           AND ((size = side AND format = fmt) OR (without_mezzanine AND size = 512));
        t := clock_timestamp();
        PERFORM avatar.avatar_get(avatar, side, fmt);
        times := times || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
    END LOOP;
    RETURN times;
END $$;

-- The cheapest lookup a role without SELECT on the table can make: what
-- SECURITY DEFINER with a pinned search_path costs by itself.
CREATE FUNCTION bench_definer(uuid) RETURNS bytea
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT image FROM public.bench_plain WHERE id = $1';

-- avatar_rendition_exact of a size the cache does not keep, made from the
-- memoized rendition of its quantised size, n times.
CREATE FUNCTION bench_exact(avatar uuid, side int, fmt text, n int) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    times float8[] := '{}';
BEGIN
    PERFORM avatar.avatar_rendition_exact(avatar, side, fmt);
    FOR i IN 1..n LOOP
        t := clock_timestamp();
        PERFORM avatar.avatar_rendition_exact(avatar, side, fmt);
        times := times || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
    END LOOP;
    RETURN times;
END $$;

-- avatar_set of an upload with the user's crop, n times.
CREATE FUNCTION bench_set_cropped(upload text, x int, y int, side int, n int) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE
    img bytea := (SELECT image FROM bench_upload WHERE name = upload);
    t timestamptz;
    times float8[] := '{}';
BEGIN
    PERFORM length(img);
    FOR i IN 1..n LOOP
        t := clock_timestamp();
        PERFORM avatar.avatar_set('bench,upload', img, crop_x => x, crop_y => y, crop_size => side);
        times := times || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
    END LOOP;
    RETURN times;
END $$;
