-- The parts of the API that are plain queries, and the grants.

CREATE FUNCTION avatar.avatar_id(resource text) RETURNS uuid
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.id FROM avatar.avatar a WHERE a.resource = $1 $$;

COMMENT ON FUNCTION avatar.avatar_id(text) IS
    'The public id of the avatar of a resource, or NULL if it has none.';

-- What an HTTP route needs for an ETag or a 304, without the image bytes.
CREATE FUNCTION avatar.avatar_sha1(id uuid) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a.sha1 FROM avatar.avatar a WHERE a.id = $1 $$;

COMMENT ON FUNCTION avatar.avatar_sha1(uuid) IS
    'The SHA-1 (lower-case hex) of an avatar''s current image, or NULL: its version and ETag.';

-- The cache goes with it through ON DELETE CASCADE.
CREATE FUNCTION avatar.avatar_delete(resource text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH gone AS (DELETE FROM avatar.avatar a WHERE a.resource = $1 RETURNING 1)
        SELECT EXISTS (SELECT FROM gone)
    $$;

COMMENT ON FUNCTION avatar.avatar_delete(text) IS
    'Removes the avatar of a resource and its cached sizes; true if there was one.';

-- XEP-0084 metadata (id = sha1, bytes, width, height, type) plus
-- bookkeeping. No row for an unknown id.
CREATE FUNCTION avatar.avatar_info(
        id uuid,
        OUT resource text, OUT sha1 text, OUT bytes integer,
        OUT width integer, OUT height integer, OUT mime_type text,
        OUT created_at timestamptz, OUT updated_at timestamptz,
        OUT cached_sizes integer)
    RETURNS SETOF record
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT a.resource, a.sha1, a.bytes, a.width, a.width, 'image/jpeg',
               a.created_at, a.updated_at,
               (SELECT count(*)::integer FROM avatar.avatar_cache c
                 WHERE c.avatar_id = a.id AND c.sha1 = a.sha1)
          FROM avatar.avatar a
         WHERE a.id = $1
    $$;

COMMENT ON FUNCTION avatar.avatar_info(uuid) IS
    'Metadata of an avatar: owner, SHA-1, size, type, timestamps and cached sizes.';

-- Every change to an avatar, whichever function or statement makes it,
-- tells listeners (such as pg-avatar serve's memory cache) which id changed.
-- `sha1` is the new image's, or null when the avatar is gone.
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
            'sha1', CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE changed.sha1 END)::text);
        RETURN NULL;
    END
    $$;

CREATE TRIGGER avatar_changed
    AFTER INSERT OR DELETE OR UPDATE OF image, sha1 ON avatar.avatar
    FOR EACH ROW EXECUTE FUNCTION avatar.avatar_notify_change();

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

-- Least privilege: only the size rule is public. Grant the rest to the
-- roles that need it (see the README's "Privileges").
REVOKE ALL ON FUNCTION
    avatar.avatar_set(text, bytea),
    avatar.avatar_get(uuid, integer),
    avatar.avatar_id(text),
    avatar.avatar_sha1(uuid),
    avatar.avatar_delete(text),
    avatar.avatar_info(uuid),
    avatar.avatar_notify_change(),
    avatar.avatar_owner_deleted(),
    avatar.attach(regclass, name[])
FROM PUBLIC;
