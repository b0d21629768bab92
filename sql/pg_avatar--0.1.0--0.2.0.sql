-- pg_avatar 0.1.0 -> 0.2.0
-- A fresh install of 0.2.0 and an upgraded 0.1.0 must end up identical;
-- the tests compare them object by object.

-- Small renditions stay in the heap tuple (see schema.sql). Rows already
-- cached keep their layout until they are next written.
ALTER TABLE avatar.avatar_cache SET (toast_tuple_target = 8160);

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

REVOKE ALL ON FUNCTION
    avatar.avatar_notify_change(),
    avatar.avatar_owner_deleted(),
    avatar.attach(regclass, name[])
FROM PUBLIC;
