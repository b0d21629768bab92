-- pg_avatar 0.1.0 -> 0.2.0
-- A fresh install of 0.2.0 and an upgraded 0.1.0 must end up identical;
-- the tests compare them object by object.

-- Small renditions stay in the heap tuple (see schema.sql). Rows already
-- cached keep their layout until they are next written.
ALTER TABLE avatar.avatar_cache SET (toast_tuple_target = 8160);

-- Renditions in PNG and WebP as well: the cache is keyed by format too.
-- Every row cached so far is a JPEG.
ALTER TABLE avatar.avatar_cache
    ADD COLUMN format text COLLATE "C" NOT NULL DEFAULT 'jpeg'
        CHECK (format IN ('jpeg', 'png', 'webp'));
ALTER TABLE avatar.avatar_cache ALTER COLUMN format DROP DEFAULT;
ALTER TABLE avatar.avatar_cache
    DROP CONSTRAINT avatar_cache_pkey,
    ADD PRIMARY KEY (avatar_id, size, format);

-- Avatars can be disabled: kept, but not served.
ALTER TABLE avatar.avatar ADD COLUMN disabled_at timestamptz;

CREATE TABLE avatar.avatar_email (
    resource text NOT NULL
             CHECK (btrim(resource) <> '' AND octet_length(resource) <= 1024),
    md5      text NOT NULL UNIQUE CHECK (md5 ~ '^[0-9a-f]{32}$'),
    sha256   text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- The address's domain, for the opt-in fallback's DNS SRV lookup
    -- (Libravatar federation): where to ask, never who.
    domain   text NOT NULL CHECK (domain <> '' AND octet_length(domain) <= 253)
);
CREATE INDEX avatar_email_resource ON avatar.avatar_email (resource);
SELECT pg_catalog.pg_extension_config_dump('avatar.avatar_email', '');

-- Every change to an avatar, whichever function or statement makes it,
-- tells listeners (such as pg-avatar serve's memory cache) which id changed.
-- `sha1` is the new image's, or null when the avatar is gone or disabled.
CREATE FUNCTION avatar.avatar_notify_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        changed avatar.avatar := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    BEGIN
        PERFORM pg_notify('avatar_changed', json_build_object(
            'id', changed.id,
            'resource', changed.resource,
            'sha1', CASE WHEN TG_OP = 'DELETE' OR changed.disabled_at IS NOT NULL THEN NULL
                         ELSE changed.sha1 END)::text);
        -- Which avatar an address digest leads to may have changed too:
        -- its owner's, or the fallback's copy for it.
        PERFORM avatar.avatar_notify_address(e.md5, e.sha256)
           FROM avatar.avatar_email e
          WHERE e.resource = changed.resource
             OR (changed.resource LIKE 'libravatar:%'
                 AND e.sha256 = substr(changed.resource, length('libravatar:') + 1));
        RETURN NULL;
    END
    $$;

CREATE TRIGGER avatar_changed
    AFTER INSERT OR DELETE OR UPDATE OF image, sha1, disabled_at ON avatar.avatar
    FOR EACH ROW EXECUTE FUNCTION avatar.avatar_notify_change();

-- `avatar_address_changed` names the digests whose avatar may now be
-- another, so the Libravatar route can evict what it remembers of them.
CREATE FUNCTION avatar.avatar_notify_address(md5 text, sha256 text) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT pg_notify('avatar_address_changed',
                         json_build_object('md5', $1, 'sha256', $2)::text)
    $$;

CREATE FUNCTION avatar.avatar_email_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            PERFORM avatar.avatar_notify_address(OLD.md5, OLD.sha256);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM avatar.avatar_notify_address(NEW.md5, NEW.sha256);
        END IF;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER avatar_email_changed
    AFTER INSERT OR DELETE OR UPDATE ON avatar.avatar_email
    FOR EACH ROW EXECUTE FUNCTION avatar.avatar_email_changed();

-- Deleting an owner row deletes its avatar. avatar.attach('users', 'id')
-- installs the trigger; resources are named as diesel-avatar names them:
-- the table's name, then each key column's text, with '%' and ','
-- percent-escaped. Copying a row copies no avatar: the copy's key names
-- another resource, which has none until one is set.
CREATE FUNCTION avatar.avatar_owner_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        old_row jsonb := to_jsonb(OLD);
        owner text := TG_TABLE_NAME;
        key_column text;
    BEGIN
        FOREACH key_column IN ARRAY TG_ARGV LOOP
            owner := owner || ',' || replace(replace(old_row ->> key_column, '%', '%25'), ',', '%2C');
        END LOOP;
        DELETE FROM avatar.avatar a WHERE a.resource = owner;
        RETURN NULL;
    END
    $$;

-- Runs with the caller's rights: only a role that may create triggers on
-- the table (its owner) can attach it.
CREATE FUNCTION avatar.attach(owner regclass, VARIADIC key_columns name[]) RETURNS void
    LANGUAGE plpgsql STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        key_column name;
    BEGIN
        IF cardinality(key_columns) = 0 THEN
            RAISE EXCEPTION 'pg_avatar: attach needs at least one key column'
                USING ERRCODE = '22023', HINT = 'For example: SELECT avatar.attach(''users'', ''id'');';
        END IF;
        FOREACH key_column IN ARRAY key_columns LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute
                            WHERE attrelid = owner AND attname = key_column
                              AND attnum > 0 AND NOT attisdropped) THEN
                RAISE EXCEPTION 'pg_avatar: column % does not exist in %', quote_ident(key_column), owner
                    USING ERRCODE = '42703';
            END IF;
        END LOOP;
        EXECUTE format(
            'CREATE TRIGGER avatar_owner_deleted AFTER DELETE ON %s '
            'FOR EACH ROW EXECUTE FUNCTION avatar.avatar_owner_deleted(%s)',
            owner,
            (SELECT string_agg(quote_literal(c), ', ') FROM unnest(key_columns) c));
    END
    $$;

COMMENT ON FUNCTION avatar.attach(regclass, name[]) IS
    'Deletes the avatar of each row deleted from a table, by its key columns.';


CREATE OR REPLACE FUNCTION avatar.avatar_sha1(id uuid) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.sha1 FROM avatar.avatar a WHERE a.id = $1 AND a.disabled_at IS NULL $$;

-- Written in Rust: generated defaults (see extension/src/api.rs).
CREATE FUNCTION avatar."avatar_default"(
	"kind" TEXT, /* &str */
	"seed" TEXT, /* &str */
	"size" INT /* i32 */
) RETURNS bytea /* alloc::vec::Vec<u8> */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'avatar_default_wrapper';

-- Written in Rust: renditions in a chosen format (see extension/src/api.rs).
CREATE FUNCTION avatar."avatar_get"(
	"id" uuid, /* pgrx :: Uuid */
	"size" INT, /* i32 */
	"format" TEXT /* &str */
) RETURNS bytea /* core::option::Option<alloc::vec::Vec<u8>> */
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'avatar_get_as_wrapper';

-- XEP-0084 metadata per rendition (see extension/src/api.rs).
CREATE FUNCTION avatar."avatar_renditions"(
	"id" uuid, /* pgrx :: Uuid */
	"size" INT /* i32 */
) RETURNS TABLE (
	"format" TEXT,  /* & '_ str */
	"sha1" TEXT,  /* String */
	"bytes" INT,  /* i32 */
	"width" INT,  /* i32 */
	"height" INT,  /* i32 */
	"mime_type" TEXT  /* & '_ str */
)
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'avatar_renditions_wrapper';

-- Libravatar keys: digests of an address, never the address. The same
-- address set again moves to the new resource.
CREATE FUNCTION avatar.avatar_set_email(resource text, email text) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        address text := lower(btrim(email));
    BEGIN
        IF address !~ '^[^@\s]+@[^@\s]+$' THEN
            RAISE EXCEPTION 'pg_avatar: % is not an email address', quote_literal(email)
                USING ERRCODE = '22023', HINT = 'Pass one address, such as ''ada@example.org''.';
        END IF;
        INSERT INTO avatar.avatar_email AS e (resource, md5, sha256, domain)
        VALUES (avatar_set_email.resource, md5(address),
                encode(sha256(convert_to(address, 'UTF8')), 'hex'),
                split_part(address, '@', 2))
        ON CONFLICT (sha256) DO UPDATE SET resource = excluded.resource;
    END
    $$;

COMMENT ON FUNCTION avatar.avatar_set_email(text, text) IS
    'Lets the Libravatar route find a resource''s avatar by this address (stored as MD5 and SHA-256 digests only).';

-- The address's fallback copy (see avatar_set_fallback) goes with it.
CREATE FUNCTION avatar.avatar_unset_email(resource text, email text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (
            DELETE FROM avatar.avatar_email e
             WHERE e.resource = $1
               AND e.sha256 = encode(sha256(convert_to(lower(btrim($2)), 'UTF8')), 'hex')
            RETURNING e.sha256),
             copies AS (
            DELETE FROM avatar.avatar a USING gone
             WHERE a.resource = 'libravatar:' || gone.sha256)
        SELECT EXISTS (SELECT FROM gone)
    $$;

-- The avatar an address digest (MD5 or SHA-256, hex) points to, if it is
-- being served.
CREATE FUNCTION avatar.avatar_by_digest(digest text) RETURNS uuid
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        hex text := lower(digest);
    BEGIN
        IF hex !~ '^([0-9a-f]{32}|[0-9a-f]{64})$' THEN
            RAISE EXCEPTION 'pg_avatar: % is not an MD5 or SHA-256 digest', quote_literal(digest)
                USING ERRCODE = '22023', HINT = 'Give 32 or 64 hex digits.';
        END IF;
        -- The resource's own avatar; failing that, a copy the fallback
        -- fetched, unless the owner has an avatar that is disabled.
        RETURN (SELECT coalesce(own.id, copy.id)
                  FROM avatar.avatar_email e
                  LEFT JOIN avatar.avatar own ON own.resource = e.resource
                  LEFT JOIN avatar.avatar copy ON copy.resource = 'libravatar:' || e.sha256
                 WHERE (CASE WHEN length(hex) = 32 THEN e.md5 = hex ELSE e.sha256 = hex END)
                   AND CASE WHEN own.id IS NOT NULL THEN own.disabled_at IS NULL
                            ELSE copy.disabled_at IS NULL END);
    END
    $$;

-- The opt-in fallback to an external Libravatar provider. pg-avatar serve
-- asks which known address behind a digest has no avatar of its own and
-- no copy fresher than `refresh`; it fetches one and stores it with
-- avatar_set_fallback under the resource 'libravatar:<sha256>', a normal
-- avatar with a normal id and cache. `copied_at` is NULL for a first fetch.
CREATE FUNCTION avatar.avatar_fallback_due(digest text, refresh interval,
        OUT sha256 text, OUT domain text, OUT copied_at timestamptz)
    RETURNS SETOF record
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT e.sha256, e.domain, copy.updated_at
          FROM avatar.avatar_email e
          LEFT JOIN avatar.avatar copy ON copy.resource = 'libravatar:' || e.sha256
         WHERE (CASE WHEN length($1) = 32 THEN e.md5 = lower($1) ELSE e.sha256 = lower($1) END)
           AND NOT EXISTS (SELECT FROM avatar.avatar own WHERE own.resource = e.resource)
           AND (copy.id IS NULL OR copy.updated_at < now() - $2)
    $$;

-- Only for addresses that are set, so the route's role cannot write any
-- other resource. NULL if the address is unknown.
CREATE FUNCTION avatar.avatar_set_fallback(sha256 text, image bytea) RETURNS uuid
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT avatar.avatar_set('libravatar:' || e.sha256, $2)
          FROM avatar.avatar_email e
         WHERE e.sha256 = lower($1)
    $$;

-- The provider no longer has an avatar for the address.
CREATE FUNCTION avatar.avatar_drop_fallback(sha256 text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (DELETE FROM avatar.avatar a
                       WHERE a.resource = 'libravatar:' || lower($1) RETURNING 1)
        SELECT EXISTS (SELECT FROM gone)
    $$;

-- Disable keeps the image and the id; enable serves them again.
CREATE FUNCTION avatar.avatar_disable(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH changed AS (UPDATE avatar.avatar a SET disabled_at = now()
                          WHERE a.resource = $1 AND a.disabled_at IS NULL RETURNING 1)
        SELECT EXISTS (SELECT FROM changed)
    $$;

CREATE FUNCTION avatar.avatar_enable(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH changed AS (UPDATE avatar.avatar a SET disabled_at = NULL
                          WHERE a.resource = $1 AND a.disabled_at IS NOT NULL RETURNING 1)
        SELECT EXISTS (SELECT FROM changed)
    $$;

-- Everything pg_avatar holds for a resource, gone for good: image, cache,
-- address digests and the fallback's copies for those addresses.
CREATE FUNCTION avatar.avatar_wipe(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH emails AS (DELETE FROM avatar.avatar_email e WHERE e.resource = $1
                        RETURNING 'libravatar:' || e.sha256 AS copy),
             gone AS (DELETE FROM avatar.avatar a WHERE a.resource = $1 RETURNING 1),
             copies AS (DELETE FROM avatar.avatar a USING emails WHERE a.resource = emails.copy)
        SELECT EXISTS (SELECT FROM gone)
    $$;

-- "The avatar, or a placeholder for this name" in one call. The
-- placeholder is seeded by `name` when given, else by the resource.
CREATE FUNCTION avatar.avatar_get_or_default(
        resource text, size integer, kind text DEFAULT 'identicon', name text DEFAULT NULL)
    RETURNS bytea
    LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT coalesce(avatar.avatar_get(avatar.avatar_id($1), $2),
                        avatar.avatar_default($3, coalesce($4, $1), $2))
    $$;

COMMENT ON FUNCTION avatar.avatar_get_or_default(text, integer, text, text) IS
    'The avatar of a resource, or a generated one (kind: initial, identicon, mp, ...) for a name.';

REVOKE ALL ON FUNCTION
    avatar.avatar_get(uuid, integer, text),
    avatar.avatar_renditions(uuid, integer),
    avatar.avatar_set_email(text, text),
    avatar.avatar_unset_email(text, text),
    avatar.avatar_by_digest(text),
    avatar.avatar_fallback_due(text, interval),
    avatar.avatar_set_fallback(text, bytea),
    avatar.avatar_drop_fallback(text),
    avatar.avatar_disable(text),
    avatar.avatar_enable(text),
    avatar.avatar_wipe(text),
    avatar.avatar_get_or_default(text, integer, text, text)
FROM PUBLIC;

REVOKE ALL ON FUNCTION
    avatar.avatar_notify_change(),
    avatar.avatar_notify_address(text, text),
    avatar.avatar_email_changed(),
    avatar.avatar_owner_deleted(),
    avatar.attach(regclass, name[])
FROM PUBLIC;
