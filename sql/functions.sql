-- The parts of the API that are plain queries, and the grants.

-- Whether an avatar is served, or disabled: the one definition, which
-- every read, in SQL and in Rust, and the change notification use. Plain
-- SQL without a SET clause, so that the planner inlines it into the
-- queries that call it; its body names no operator or function.
CREATE FUNCTION avatar.avatar_is_served(a avatar.avatar) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT $1.disabled_at IS NULL $$;

CREATE FUNCTION avatar.avatar_id(resource text) RETURNS uuid
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.id FROM avatar.avatar a WHERE a.resource = $1 COLLATE "default" $$;

COMMENT ON FUNCTION avatar.avatar_id(text) IS
    'The public id of the avatar of a resource, or NULL if it has none.';

-- What an HTTP route needs for an ETag or a 304, without the image bytes.
CREATE FUNCTION avatar.avatar_sha1(id uuid) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.sha1 FROM avatar.avatar a WHERE a.id = $1 AND avatar.avatar_is_served(a) $$;

COMMENT ON FUNCTION avatar.avatar_sha1(uuid) IS
    'The SHA-1 (lower-case hex) of an avatar''s current image, or NULL: its version and ETag.';

-- The cache goes with it through ON DELETE CASCADE.
CREATE FUNCTION avatar.avatar_delete(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (DELETE FROM avatar.avatar a WHERE a.resource = $1 COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM gone)
    $$;

COMMENT ON FUNCTION avatar.avatar_delete(text) IS
    'Removes the avatar of a resource and its cached sizes; true if there was one.';

-- XEP-0084 metadata (id = sha1, bytes, width, height, type) plus
-- bookkeeping, the rating and the alt text. No row for an unknown id.
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

CREATE TRIGGER avatar_changed
    AFTER INSERT OR DELETE OR UPDATE OF image, sha1, disabled_at, rating ON avatar.avatar
    FOR EACH ROW EXECUTE FUNCTION avatar.avatar_notify_change();

-- The cache's rows go with their avatar, however it is deleted: what a
-- foreign key's cascade would do, without the lock its check takes (see
-- avatar_cache in schema.sql).
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

-- Attachments (extension/src/attach.rs): the rows of an attached table
-- own the avatars named after them. attach and detach run as their caller,
-- who must own the table; the triggers only act for recorded tables, and
-- read the recorded key columns only, as plain values.
CREATE FUNCTION avatar.attach(owner regclass, VARIADIC key_columns name[]) RETURNS void
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

CREATE FUNCTION avatar.avatar_owner_deleted() RETURNS trigger
    LANGUAGE c SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'avatar_owner_deleted_wrapper';

CREATE FUNCTION avatar.avatar_owner_truncated() RETURNS trigger
    LANGUAGE c SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'avatar_owner_truncated_wrapper';

-- A dropped table is detached, so no other table can ever be taken for it
-- (oids are reused) and its name can be attached again. Its avatars stay.
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

-- Libravatar keys: digests of an address, never the address. The same
-- address set again moves to the new resource.
CREATE FUNCTION avatar.avatar_set_email(resource text, email text) RETURNS void
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

COMMENT ON FUNCTION avatar.avatar_set_email(text, text) IS
    'Lets the Libravatar route find a resource''s avatar by this address (stored as MD5 and SHA-256 digests only).';

-- The address's fallback copy (see avatar_set_fallback) goes with it. Two
-- statements, so that the second's snapshot, taken once the first has
-- waited out any fallback committing a copy of this address, sees it.
CREATE FUNCTION avatar.avatar_unset_email(resource text, email text) RETURNS boolean
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
                   AND CASE WHEN own.id IS NOT NULL THEN avatar.avatar_is_served(own)
                            ELSE avatar.avatar_is_served(copy) END);
    END
    $$;

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
         WHERE (CASE WHEN length($1) = 32 THEN e.md5 = lower($1) COLLATE "default" ELSE e.sha256 = lower($1) COLLATE "default" END)
           AND NOT EXISTS (SELECT FROM avatar.avatar own WHERE own.resource = e.resource)
           AND (copy.id IS NULL OR copy.updated_at < now() - $2)
    $$;

-- The provider no longer has an avatar for the address.
CREATE FUNCTION avatar.avatar_drop_fallback(sha256 text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (DELETE FROM avatar.avatar a
                       WHERE a.resource = ('libravatar:' || lower($1)) COLLATE "default" RETURNING 1)
        SELECT EXISTS (SELECT FROM gone)
    $$;

-- Disable keeps the image and the id; enable serves them again.
CREATE FUNCTION avatar.avatar_disable(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH changed AS (UPDATE avatar.avatar a SET disabled_at = now()
                          WHERE a.resource = $1 COLLATE "default" AND avatar.avatar_is_served(a) RETURNING 1)
        SELECT EXISTS (SELECT FROM changed)
    $$;

CREATE FUNCTION avatar.avatar_enable(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH changed AS (UPDATE avatar.avatar a SET disabled_at = NULL
                          WHERE a.resource = $1 COLLATE "default" AND NOT avatar.avatar_is_served(a) RETURNING 1)
        SELECT EXISTS (SELECT FROM changed)
    $$;

-- Everything pg_avatar holds for a resource, gone for good: image, cache,
-- address digests and the fallback's copies for those addresses. The
-- addresses go first, in a statement of their own, so that the copies'
-- snapshot, taken once it has waited out any fallback committing a copy of
-- them, sees that copy too; a fallback still storing one then finds the
-- address gone at its own commit and removes it (commit_check.rs).
CREATE FUNCTION avatar.avatar_wipe(resource text) RETURNS boolean
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

-- Least privilege: only the size rule, the resource encoding and the
-- generated defaults are public. Grant the rest to the
-- roles that need it (see the README's "Privileges").
REVOKE ALL ON FUNCTION
    avatar.avatar_is_served(avatar.avatar),
    avatar.avatar_set(text, bytea),
    avatar.avatar_set(text, bytea, integer, integer, integer),
    avatar.avatar_set_rating(text, text),
    avatar.avatar_set_description(text, text),
    avatar.avatar_description(uuid),
    avatar.avatar_by_digest(text, text),
    avatar.avatar_rendition_exact(uuid, integer, text),
    avatar.avatar_get(uuid, integer),
    avatar.avatar_get(uuid, integer, text),
    avatar.avatar_renditions(uuid, integer),
    avatar.avatar_id(text),
    avatar.avatar_sha1(uuid),
    avatar.avatar_delete(text),
    avatar.avatar_info(uuid),
    avatar.avatar_notify_change(),
    avatar.avatar_notify_address(text, text),
    avatar.avatar_email_changed(),
    avatar.avatar_rendition(uuid, integer, text),
    avatar.avatar_resource_check(text),
    avatar.avatar_deleted(),
    avatar.avatar_owner_deleted(),
    avatar.avatar_owner_truncated(),
    avatar.avatar_attachment_dropped(),
    avatar.attach(regclass, name[]),
    avatar.detach(regclass),
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
