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

REVOKE ALL ON FUNCTION avatar.avatar_notify_change() FROM PUBLIC;
