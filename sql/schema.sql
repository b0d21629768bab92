-- pg_avatar's tables. The extension's functions are the interface: the
-- tables grant nothing to anyone, and every write goes through a
-- SECURITY DEFINER function with a pinned search_path.

-- One normalised master per resource. `id` is random (see random_id in
-- store.rs) and is what public URLs carry, so it never reveals the owner.
CREATE TABLE avatar.avatar (
    id         uuid PRIMARY KEY,
    resource   text NOT NULL UNIQUE
               CHECK (btrim(resource) <> '' AND octet_length(resource) <= 1024),
    image      bytea NOT NULL,
    width      integer NOT NULL CHECK (width BETWEEN 1 AND 2048),
    -- Derived, so it can never disagree with the image.
    bytes      integer GENERATED ALWAYS AS (octet_length(image)) STORED,
    -- SHA-1 of `image`, lower-case hex: XMPP's avatar id, and the HTTP ETag
    -- and URL version. PostgreSQL has no built-in SHA-1, so avatar_set
    -- computes it with the image.
    sha1       text NOT NULL CHECK (sha1 ~ '^[0-9a-f]{40}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Set by avatar_disable: the image is kept but not served.
    disabled_at timestamptz,
    -- Gravatar's content rating, mildest first (avatar_set_rating); the
    -- Libravatar route serves an avatar only to requests that accept it.
    -- It belongs to the resource's avatar and survives a new image.
    rating      text NOT NULL DEFAULT 'g' CHECK (rating IN ('g', 'pg', 'r', 'x')),
    -- Alt text (avatar_set_description), as long as Mastodon allows. A new
    -- image drops it: it described the old one.
    description text CHECK (char_length(description) <= 1500)
);

-- Memoized renditions, one per size and format of each master. `sha1`
-- names the master a row was rendered from, and is part of the key, so
-- memoizing never has to update or lock a row: a row whose sha1 is not the
-- master's is never served, and the next avatar_set clears it. No foreign
-- key either, for the same reason (its check would lock the avatar row
-- until the reader commits); the trigger avatar_deleted (functions.sql)
-- removes a deleted avatar's rows.
CREATE TABLE avatar.avatar_cache (
    avatar_id uuid NOT NULL,
    size      integer NOT NULL CHECK (size BETWEEN 1 AND 2048),
    sha1      text NOT NULL,
    image     bytea NOT NULL,
    -- Last, where 0.1.0 -> 0.2.0 adds it. "C": a key column compared on
    -- every lookup, which need not pay for the database's locale.
    format    text COLLATE "C" NOT NULL CHECK (format IN ('jpeg', 'png', 'webp')),
    PRIMARY KEY (avatar_id, size, format, sha1)
);

-- Opt-in email keys for the Libravatar route: digests of the trimmed,
-- lower-cased address, never the address itself. A resource may have
-- several; an address belongs to one resource at a time.
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

-- Tables whose rows own avatars (avatar.attach): deleting a row, or
-- truncating the table, wipes what is kept about its resources. Only
-- tables recorded here are acted on, whatever triggers exist elsewhere.
CREATE TABLE avatar.avatar_attachment (
    -- The table, or the root of a partitioned one. regclass, so pg_dump
    -- writes its name and a restore finds the new table.
    relid       regclass PRIMARY KEY,
    -- The table's name when it was attached: its resources' first part.
    -- Unique, so no second table of that name can claim them.
    prefix      text NOT NULL UNIQUE CHECK (prefix <> '' AND prefix !~ '[,%]'),
    key_columns name[] NOT NULL CHECK (cardinality(key_columns) >= 1)
);

-- JPEG does not compress: skip pglz's attempt on every write.
ALTER TABLE avatar.avatar ALTER COLUMN image SET STORAGE EXTERNAL;
ALTER TABLE avatar.avatar_cache ALTER COLUMN image SET STORAGE EXTERNAL;
-- Keep renditions of up to about 8 kB (128 px and below) in the heap
-- tuple, so a cache hit reads one index and one heap page instead of also
-- probing the TOAST table's index.
ALTER TABLE avatar.avatar_cache SET (toast_tuple_target = 8160);

-- Without these, pg_dump would treat the rows as part of the extension
-- and silently leave every avatar out of a backup.
SELECT pg_catalog.pg_extension_config_dump('avatar.avatar', '');
SELECT pg_catalog.pg_extension_config_dump('avatar.avatar_cache', '');
SELECT pg_catalog.pg_extension_config_dump('avatar.avatar_email', '');
SELECT pg_catalog.pg_extension_config_dump('avatar.avatar_attachment', '');

GRANT USAGE ON SCHEMA avatar TO PUBLIC;
