-- pg_avatar 0.2.0 -> 0.3.0: the trust boundary.
-- A fresh install of 0.3.0 and an upgraded 0.2.0 must end up identical;
-- the tests compare them object by object.

-- Memoizing no longer locks anything (see avatar_cache in schema.sql): the
-- master's digest joins the key, and the foreign key becomes a trigger.
ALTER TABLE avatar.avatar_cache
    DROP CONSTRAINT avatar_cache_avatar_id_fkey,
    DROP CONSTRAINT avatar_cache_pkey,
    ADD PRIMARY KEY (avatar_id, size, format, sha1);

CREATE FUNCTION avatar.avatar_deleted() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        DELETE FROM avatar.avatar_cache c USING gone WHERE c.avatar_id = gone.id;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER avatar_deleted
    AFTER DELETE ON avatar.avatar REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION avatar.avatar_deleted();

CREATE TABLE avatar.avatar_attachment (
    -- The table, or the root of a partitioned one. regclass, so pg_dump
    -- writes its name and a restore finds the new table.
    relid       regclass PRIMARY KEY,
    -- The table's name when it was attached: its resources' first part.
    -- Unique, so no second table of that name can claim them.
    prefix      text NOT NULL UNIQUE CHECK (prefix <> '' AND prefix !~ '[,%]'),
    key_columns name[] NOT NULL CHECK (cardinality(key_columns) >= 1)
);
SELECT pg_catalog.pg_extension_config_dump('avatar.avatar_attachment', '');

-- Functions in Rust, as a fresh install generates them. avatar_set_fallback
-- was SQL: it decodes with the fallback's own limits now.
CREATE OR REPLACE FUNCTION avatar.avatar_set_fallback(
	"sha256" TEXT,
	"image" bytea
) RETURNS uuid
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'avatar_set_fallback_wrapper';

CREATE FUNCTION avatar.avatar_rendition(
	"id" uuid,
	"size" INT,
	"format" TEXT
) RETURNS TABLE (
	"sha1" TEXT,
	"image" bytea
)
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'avatar_rendition_wrapper';

CREATE FUNCTION avatar.avatar_resource_check(
	"resource" TEXT
) RETURNS void
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'avatar_resource_check_wrapper';

-- The one encoding of a resource, for diesel-avatar's SQL expression.
CREATE FUNCTION avatar."avatar_resource"(
	"prefix" TEXT, /* &str */
	"parts" TEXT[] /* pgrx::datum::array::Array<&str> */
) RETURNS TEXT /* alloc::string::String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'avatar_resource_wrapper';

CREATE OR REPLACE FUNCTION avatar.avatar_set_email(resource text, email text) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        address text := lower(btrim(email));
    BEGIN
        PERFORM avatar.avatar_resource_check(resource);
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

-- The address's fallback copy (see avatar_set_fallback) goes with it. Two
-- statements, so that the second's snapshot, taken once the first has
-- waited out any fallback committing a copy of this address, sees it.
CREATE OR REPLACE FUNCTION avatar.avatar_unset_email(resource text, email text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        gone text;
    BEGIN
        DELETE FROM avatar.avatar_email e
         WHERE e.resource = $1 COLLATE "default"
           AND e.sha256 = encode(sha256(convert_to(lower(btrim($2)), 'UTF8')), 'hex')
        RETURNING e.sha256 INTO gone;
        DELETE FROM avatar.avatar a WHERE a.resource = 'libravatar:' || gone;
        RETURN gone IS NOT NULL;
    END
    $$;

-- Everything pg_avatar holds for a resource, gone for good: image, cache,
-- address digests and the fallback's copies for those addresses. The
-- addresses go first, in a statement of their own, so that the copies'
-- snapshot, taken once it has waited out any fallback committing a copy of
-- them, sees that copy too; a fallback still storing one then finds the
-- address gone at its own commit and removes it (commit_check.rs).
CREATE OR REPLACE FUNCTION avatar.avatar_wipe(resource text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        copies text[];
        existed boolean;
    BEGIN
        WITH emails AS (DELETE FROM avatar.avatar_email e WHERE e.resource = $1 COLLATE "default"
                        RETURNING 'libravatar:' || e.sha256 AS copy)
        SELECT array_agg(emails.copy) INTO copies FROM emails;
        DELETE FROM avatar.avatar a WHERE a.resource = ANY (copies);
        WITH gone AS (DELETE FROM avatar.avatar a WHERE a.resource = $1 COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM gone) INTO existed;
        RETURN existed;
    END
    $$;

-- Attachments: a record and triggers in Rust that never evaluate a row.
-- The same functions as before where a function existed, so grants stay.
CREATE OR REPLACE FUNCTION avatar.attach(owner regclass, VARIADIC key_columns name[]) RETURNS void
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'attach_wrapper';

COMMENT ON FUNCTION avatar.attach(regclass, name[]) IS
    'Deletes everything about the avatar of each row deleted from a table, by its key columns.';

CREATE FUNCTION avatar.detach(owner regclass) RETURNS boolean
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'detach_wrapper';

COMMENT ON FUNCTION avatar.detach(regclass) IS
    'Undoes avatar.attach; the avatars stay. True if the table was attached.';

CREATE OR REPLACE FUNCTION avatar.avatar_owner_deleted() RETURNS trigger
    LANGUAGE c SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'avatar_owner_deleted_wrapper';

CREATE FUNCTION avatar.avatar_owner_truncated() RETURNS trigger
    LANGUAGE c SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'avatar_owner_truncated_wrapper';

CREATE FUNCTION avatar.avatar_attachment_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        DELETE FROM avatar.avatar_attachment a
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = a.relid;
    END
    $$;

CREATE EVENT TRIGGER avatar_attachment_dropped ON sql_drop
    EXECUTE FUNCTION avatar.avatar_attachment_dropped();

REVOKE ALL ON FUNCTION
    avatar.avatar_rendition(uuid, integer, text),
    avatar.avatar_resource_check(text),
    avatar.avatar_deleted(),
    avatar.avatar_owner_truncated(),
    avatar.avatar_attachment_dropped(),
    avatar.detach(regclass),
    avatar.avatar_set_fallback(text, bytea)
FROM PUBLIC;

-- 0.2.0's README granted its trigger function to table owners, who could
-- then put it on any table of theirs. 0.3.0's triggers need no grant, and
-- one made by hand refuses to act, but the grant is taken back all the same.
DO $$
DECLARE
    grantee name;
BEGIN
    FOR grantee IN
        SELECT r.rolname
          FROM pg_catalog.pg_proc p,
               LATERAL pg_catalog.aclexplode(p.proacl) acl
          JOIN pg_catalog.pg_roles r ON r.oid = acl.grantee
         WHERE p.oid = 'avatar.avatar_owner_deleted()'::pg_catalog.regprocedure
           AND acl.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format(
            'REVOKE ALL ON FUNCTION avatar.avatar_owner_deleted() FROM %I CASCADE', grantee);
    END LOOP;
END
$$;

-- Repair what 0.2.0 attached: its trigger, on the table and cloned to its
-- partitions, named the resource from the table it fired on and took its
-- key columns as arguments. Each such table is attached again, by its key
-- columns, as 0.3.0 records it. One that 0.3.0 cannot attach (a key of a
-- type the derive does not support) keeps its old trigger, which now
-- refuses to act, so deleting from it fails with a hint instead of deleting
-- the wrong avatars; a warning names it here. So do tables that share a
-- name: each deleted the other's avatars, and which one owns them (the
-- older may be a tenant's that got there first) is for a person to say.
-- And so do tables whose owner may not run avatar_wipe, which 0.3.0's
-- attach needs: this runs as a superuser, who could attach any of them.
DO $$
DECLARE
    old record;
    keys name[];
    start integer;
BEGIN
    FOR old IN
        SELECT t.tgrelid::regclass AS relid, t.tgname, t.tgargs,
               count(*) OVER (PARTITION BY c.relname) > 1 AS shared,
               pg_catalog.has_function_privilege(c.relowner,
                   'avatar.avatar_wipe(text)'::pg_catalog.regprocedure, 'EXECUTE') AS may_wipe,
               pg_catalog.pg_get_userbyid(c.relowner) AS owner
          FROM pg_catalog.pg_trigger t
          JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
         WHERE t.tgfoid = 'avatar.avatar_owner_deleted()'::pg_catalog.regprocedure
           AND t.tgparentid = 0 AND c.relpersistence <> 't'
         ORDER BY t.tgrelid
    LOOP
        IF old.shared THEN
            RAISE WARNING 'pg_avatar: % stays detached: another attached table has the same name',
                old.relid
                USING DETAIL = 'Both named their rows'' avatars after that name, so each deleted '
                               'the other''s.',
                      HINT = 'Deleting from it now fails until the table that owns those avatars '
                             'is attached with avatar.attach, and the other''s trigger '
                             'avatar_owner_deleted is dropped.';
            CONTINUE;
        END IF;
        IF NOT old.may_wipe THEN
            RAISE WARNING 'pg_avatar: % stays detached: its owner % may not run avatar_wipe',
                old.relid, old.owner
                USING HINT = pg_catalog.format(
                    'Deleting from it now fails. GRANT EXECUTE ON FUNCTION avatar.avatar_wipe(text) '
                    'TO %I, then have it run avatar.attach again.', old.owner);
            CONTINUE;
        END IF;
        keys := '{}';
        start := 0;
        FOR i IN 0 .. pg_catalog.length(old.tgargs) - 1 LOOP
            IF pg_catalog.get_byte(old.tgargs, i) = 0 THEN
                keys := keys || pg_catalog.convert_from(
                    pg_catalog.substr(old.tgargs, start + 1, i - start), 'UTF8')::name;
                start := i + 1;
            END IF;
        END LOOP;
        BEGIN
            PERFORM avatar.attach(old.relid, VARIADIC keys);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_avatar: % stays detached: %', old.relid, SQLERRM
                USING HINT = 'Deleting from it now fails until it is attached again with avatar.attach, '
                             'or its trigger avatar_owner_deleted is dropped.';
        END;
    END LOOP;
END
$$;

-- "Disabled" is decided in one place, avatar_is_served, which every read
-- and the change notification now call.
CREATE FUNCTION avatar.avatar_is_served(a avatar.avatar) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT $1.disabled_at IS NULL $$;
REVOKE ALL ON FUNCTION avatar.avatar_is_served(avatar.avatar) FROM PUBLIC;

CREATE OR REPLACE FUNCTION avatar.avatar_sha1(id uuid) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.sha1 FROM avatar.avatar a WHERE a.id = $1 AND avatar.avatar_is_served(a) $$;

CREATE OR REPLACE FUNCTION avatar.avatar_notify_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        changed avatar.avatar := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    BEGIN
        PERFORM pg_notify('avatar_changed', json_build_object(
            'id', changed.id,
            'resource', changed.resource,
            'sha1', CASE WHEN TG_OP <> 'DELETE' AND avatar.avatar_is_served(changed)
                         THEN changed.sha1 END)::text);
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

CREATE OR REPLACE FUNCTION avatar.avatar_by_digest(digest text) RETURNS uuid
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
                   AND CASE WHEN own.id IS NOT NULL THEN avatar.avatar_is_served(own)
                            ELSE avatar.avatar_is_served(copy) END);
    END
    $$;

CREATE OR REPLACE FUNCTION avatar.avatar_disable(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH changed AS (UPDATE avatar.avatar a SET disabled_at = now()
                          WHERE a.resource = $1 COLLATE "default" AND avatar.avatar_is_served(a) RETURNING 1)
        SELECT EXISTS (SELECT FROM changed)
    $$;

CREATE OR REPLACE FUNCTION avatar.avatar_enable(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH changed AS (UPDATE avatar.avatar a SET disabled_at = NULL
                          WHERE a.resource = $1 COLLATE "default" AND NOT avatar.avatar_is_served(a) RETURNING 1)
        SELECT EXISTS (SELECT FROM changed)
    $$;

-- What users of avatar systems ask for (issue 13): a rating for the
-- Libravatar route's r=, alt text, the user's own crop and exact sizes.
ALTER TABLE avatar.avatar
    ADD COLUMN rating text NOT NULL DEFAULT 'g' CHECK (rating IN ('g', 'pg', 'r', 'x')),
    ADD COLUMN description text CHECK (char_length(description) <= 1500);

-- A new rating changes what the Libravatar route may serve for an address.
DROP TRIGGER avatar_changed ON avatar.avatar;
CREATE TRIGGER avatar_changed
    AFTER INSERT OR DELETE OR UPDATE OF image, sha1, disabled_at, rating ON avatar.avatar
    FOR EACH ROW EXECUTE FUNCTION avatar.avatar_notify_change();

-- avatar_info returns two more columns, so it is made anew, and the roles
-- that could run it must be granted it again: granted here, inside the
-- update, it would count as the extension's own initial privilege, which
-- pg_dump leaves out, and a restore would lose it. The update names them.
-- A view over avatar_info stops the update (DROP says which); drop it
-- first and make it again after.
DO $do$
DECLARE
    roles text;
BEGIN
    SELECT pg_catalog.string_agg(CASE WHEN acl.grantee = 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(acl.grantee)) END,
                                 ', ' ORDER BY acl.grantee)
      INTO roles
      FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) acl
     WHERE p.oid = 'avatar.avatar_info(uuid)'::pg_catalog.regprocedure
       AND acl.privilege_type = 'EXECUTE' AND acl.grantee <> p.proowner;
    DROP FUNCTION avatar.avatar_info(uuid);
    IF roles IS NOT NULL THEN
        RAISE WARNING 'pg_avatar: avatar_info(uuid) returns rating and description now, and was made anew: grant it again to %', roles
            USING HINT = pg_catalog.format('GRANT EXECUTE ON FUNCTION avatar.avatar_info(uuid) TO %s;', roles);
    END IF;
END
$do$;

CREATE FUNCTION avatar.avatar_info(
        id uuid,
        OUT resource text, OUT sha1 text, OUT bytes integer,
        OUT width integer, OUT height integer, OUT mime_type text,
        OUT created_at timestamptz, OUT updated_at timestamptz,
        OUT cached_sizes integer, OUT rating text, OUT description text)
    RETURNS SETOF record
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT a.resource, a.sha1, a.bytes, a.width, a.width, 'image/jpeg',
               a.created_at, a.updated_at,
               (SELECT count(DISTINCT c.size)::integer FROM avatar.avatar_cache c
                 WHERE c.avatar_id = a.id AND c.sha1 = a.sha1),
               a.rating, a.description
          FROM avatar.avatar a
         WHERE a.id = $1
    $$;

COMMENT ON FUNCTION avatar.avatar_info(uuid) IS
    'Metadata of an avatar: owner, SHA-1, size, type, timestamps, cached sizes, rating and alt text.';

REVOKE ALL ON FUNCTION avatar.avatar_info(uuid) FROM PUBLIC;

-- Ratings and alt text. Both change the avatar row only; its id and image
-- stay. False when the resource has no avatar.
CREATE FUNCTION avatar.avatar_set_rating(resource text, rating text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        changed boolean;
    BEGIN
        IF $1 IS NULL OR $2 IS NULL THEN
            RAISE EXCEPTION 'pg_avatar: % must not be NULL', CASE WHEN $1 IS NULL THEN 'resource' ELSE 'rating' END
                USING ERRCODE = '22004', HINT = 'Rate an avatar ''g'' to undo a rating.';
        END IF;
        -- "C": the caller's collation (a case-blind one, say) decides nothing.
        IF NOT $2 COLLATE "C" = ANY (ARRAY['g', 'pg', 'r', 'x']) THEN
            RAISE EXCEPTION 'pg_avatar: % is not a rating', quote_literal($2)
                USING ERRCODE = '22023', HINT = 'Use ''g'', ''pg'', ''r'' or ''x''.';
        END IF;
        WITH rated AS (UPDATE avatar.avatar a SET rating = $2
                        WHERE a.resource = $1 COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM rated) INTO changed;
        RETURN changed;
    END
    $$;

COMMENT ON FUNCTION avatar.avatar_set_rating(text, text) IS
    'Rates a resource''s avatar g, pg, r or x, for the Libravatar route''s r=; true if it has one.';

-- Not STRICT: a NULL description clears it.
CREATE FUNCTION avatar.avatar_set_description(resource text, description text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        changed boolean;
    BEGIN
        IF $1 IS NULL THEN
            RAISE EXCEPTION 'pg_avatar: resource must not be NULL'
                USING ERRCODE = '22004', HINT = 'Name the owner as table and key, for example ''users,42''.';
        END IF;
        IF char_length($2) > 1500 THEN
            RAISE EXCEPTION 'pg_avatar: the description is % characters long, over the limit of 1500',
                char_length($2)
                USING ERRCODE = '22023', HINT = 'Describe the picture in at most 1500 characters.';
        END IF;
        WITH described AS (UPDATE avatar.avatar a SET description = $2
                            WHERE a.resource = $1 COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM described) INTO changed;
        RETURN changed;
    END
    $$;

COMMENT ON FUNCTION avatar.avatar_set_description(text, text) IS
    'Sets (NULL: clears) the alt text of a resource''s avatar; true if it has one.';

CREATE FUNCTION avatar.avatar_description(id uuid) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.description FROM avatar.avatar a WHERE a.id = $1 AND avatar.avatar_is_served(a) $$;

COMMENT ON FUNCTION avatar.avatar_description(uuid) IS
    'The alt text of a served avatar, or NULL.';

-- The same for a request that accepts ratings up to `max_rating`
-- (Libravatar's r=): an avatar rated above it is answered as none, so the
-- request's default applies.
CREATE FUNCTION avatar.avatar_by_digest(digest text, max_rating text) RETURNS uuid
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        ratings CONSTANT text[] := ARRAY['g', 'pg', 'r', 'x'];
        ceiling integer := array_position(ratings, $2 COLLATE "C");
        found uuid;
    BEGIN
        IF ceiling IS NULL THEN
            RAISE EXCEPTION 'pg_avatar: % is not a rating', quote_literal($2)
                USING ERRCODE = '22023', HINT = 'Use ''g'', ''pg'', ''r'' or ''x''.';
        END IF;
        found := avatar.avatar_by_digest($1);
        RETURN (SELECT a.id FROM avatar.avatar a
                 WHERE a.id = found AND array_position(ratings, a.rating) <= ceiling);
    END
    $$;

-- Functions in Rust, as a fresh install generates them.
CREATE  FUNCTION avatar."avatar_set"(
	"resource" TEXT, /* Option < & str > */
	"image" bytea, /* Option < & [u8] > */
	"crop_x" INT, /* Option < i32 > */
	"crop_y" INT, /* Option < i32 > */
	"crop_size" INT /* Option < i32 > */
) RETURNS uuid /* pgrx :: Uuid */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'avatar_set_cropped_wrapper';

CREATE  FUNCTION avatar."avatar_default_exact"(
	"kind" TEXT, /* & str */
	"seed" TEXT, /* & str */
	"size" INT /* i32 */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'avatar_default_exact_wrapper';

CREATE  FUNCTION avatar."avatar_rendition_exact"(
	"id" uuid, /* pgrx :: Uuid */
	"size" INT, /* i32 */
	"format" TEXT /* & str */
) RETURNS TABLE (
	"sha1" TEXT,  /* String */
	"image" bytea  /* Vec < u8 > */
)
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'avatar_rendition_exact_wrapper';

REVOKE ALL ON FUNCTION
    avatar.avatar_set(text, bytea, integer, integer, integer),
    avatar.avatar_set_rating(text, text),
    avatar.avatar_set_description(text, text),
    avatar.avatar_description(uuid),
    avatar.avatar_by_digest(text, text),
    avatar.avatar_rendition_exact(uuid, integer, text)
FROM PUBLIC;

-- A parameter compares under its caller's collation, which a SECURITY
-- DEFINER function must not let decide which rows it acts on (a case-blind
-- one would match 'USERS,1' to 'users,1'): every lookup by resource or
-- digest compares under the database's default, which is deterministic and
-- which the indexes use.
CREATE OR REPLACE FUNCTION avatar.avatar_id(resource text) RETURNS uuid
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.id FROM avatar.avatar a WHERE a.resource = $1 COLLATE "default" $$;

CREATE OR REPLACE FUNCTION avatar.avatar_delete(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (DELETE FROM avatar.avatar a WHERE a.resource = $1 COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM gone)
    $$;

CREATE OR REPLACE FUNCTION avatar.avatar_fallback_due(digest text, refresh interval,
        OUT sha256 text, OUT domain text, OUT copied_at timestamptz)
    RETURNS SETOF record
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT e.sha256, e.domain, copy.updated_at
          FROM avatar.avatar_email e
          LEFT JOIN avatar.avatar copy ON copy.resource = 'libravatar:' || e.sha256
         WHERE (CASE WHEN length($1) = 32 THEN e.md5 = lower($1) COLLATE "default" ELSE e.sha256 = lower($1) COLLATE "default" END)
           AND NOT EXISTS (SELECT FROM avatar.avatar own WHERE own.resource = e.resource)
           AND (copy.id IS NULL OR copy.updated_at < now() - $2)
    $$;

CREATE OR REPLACE FUNCTION avatar.avatar_drop_fallback(sha256 text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (DELETE FROM avatar.avatar a
                       WHERE a.resource = ('libravatar:' || lower($1)) COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM gone)
    $$;
