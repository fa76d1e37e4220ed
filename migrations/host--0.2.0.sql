-- host schema 0.2.0, installed from nothing: the 0.1.0 schema plus automatic
-- collection extents (host--0.1.0--0.2.0.sql). A test proves both paths give
-- the same schema.
--
-- `host migrate` runs this file in a transaction and then records the version
-- in host.migrations; do not put BEGIN/COMMIT here.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE SCHEMA host;
COMMENT ON SCHEMA host IS 'STAC collections and items, managed by `host migrate`';

-- Bookkeeping for `host migrate`: one row per version applied, with the SHA-256
-- of the file that produced it (a changed file is refused later).
CREATE TABLE host.migrations (
    version    text PRIMARY KEY,
    sha256     text NOT NULL,
    kind       text,
    file       text,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE host.collections (
    id      text PRIMARY KEY,
    content jsonb NOT NULL
);

-- `content` is the item exactly as loaded (after plugins); the other columns
-- are derived from it for searches. For an instant, start = end = datetime.
CREATE TABLE host.items (
    collection     text NOT NULL REFERENCES host.collections (id),
    id             text NOT NULL,
    geometry       geometry(Geometry, 4326),
    bbox           double precision[],
    datetime       timestamptz,
    start_datetime timestamptz NOT NULL,
    end_datetime   timestamptz NOT NULL,
    -- lz4 compresses and decompresses several times faster than the default
    -- pglz at a similar ratio on STAC JSON (see docs/benchmarks.md).
    content        jsonb COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (collection, id),
    CONSTRAINT items_start_before_end CHECK (start_datetime <= end_datetime)
) PARTITION BY LIST (collection);

CREATE INDEX items_geometry_idx ON host.items USING gist (geometry);
CREATE INDEX items_datetime_idx ON host.items (datetime);
CREATE INDEX items_start_end_idx ON host.items (start_datetime, end_datetime);
CREATE INDEX items_id_idx ON host.items (id);

-- The partition of a collection is named from a hash of its id, so no user
-- text ever becomes part of an identifier.
CREATE FUNCTION host.partition_name(collection text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT 'items_' || md5(collection) $$;

-- Creates the collection's partition if it does not exist; returns its name.
--
-- Creating a partition locks host.items exclusively until the creating
-- transaction ends. One advisory lock for all collections serializes creators;
-- a per-collection key could deadlock two transactions that each hold one key
-- and wait for the other's table lock. Callers must create partitions before
-- touching host.items in the same transaction (the loader does it first, or in
-- a separate short transaction).
CREATE FUNCTION host.ensure_partition(collection text) RETURNS text
LANGUAGE plpgsql STRICT
AS $$
DECLARE
    part text := host.partition_name(collection);
BEGIN
    IF to_regclass(format('host.%I', part)) IS NOT NULL THEN
        RETURN part;
    END IF;
    PERFORM pg_advisory_xact_lock(1752134516, 1);  -- 'host', partition creation
    BEGIN
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS host.%I PARTITION OF host.items FOR VALUES IN (%L)',
            part, collection);
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
        -- Another transaction created it between our check and our lock.
        NULL;
    END;
    RETURN part;
END
$$;

-- Drops the collection's partition (and with it the collection's items);
-- returns whether there was one. For `host delete collection`.
CREATE FUNCTION host.drop_partition(collection text) RETURNS boolean
LANGUAGE plpgsql STRICT
AS $$
DECLARE
    part text := host.partition_name(collection);
BEGIN
    IF to_regclass(format('host.%I', part)) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE host.%I', part);
    RETURN true;
END
$$;

-- Collection extents (new in 0.2.0).
--
-- Setting `update_extents` (host.settings):
--   off        loads leave collection extents alone (the default)
--   immediate  a load recomputes each touched collection's extent before it commits
--   deferred   a load queues touched collections in host.extent_queue;
--              `host update-extents` or host.drain_extent_queue() recomputes them

CREATE TABLE host.settings (
    key   text PRIMARY KEY,
    value text NOT NULL,
    CONSTRAINT settings_update_extents CHECK (
        key <> 'update_extents' OR value IN ('off', 'immediate', 'deferred'))
);
INSERT INTO host.settings (key, value) VALUES ('update_extents', 'off');

CREATE TABLE host.extent_queue (
    collection text PRIMARY KEY REFERENCES host.collections (id) ON DELETE CASCADE,
    queued_at  timestamptz NOT NULL DEFAULT now()
);

-- RFC 3339 in UTC, without a fraction when there is none: how STAC writes times.
CREATE FUNCTION host.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_part('microseconds', t)::bigint % 1000000 = 0 THEN ''
                ELSE rtrim(to_char(t AT TIME ZONE 'UTC', '.US'), '0') END
        || 'Z'
$$;

-- Recomputes one collection's extent from its items: the first bbox of
-- extent.spatial and the first interval of extent.temporal (further entries,
-- the sub-extents, are left as they are). Returns false, changing nothing,
-- when the collection has no items. Removes the collection from the queue.
CREATE FUNCTION host.update_extent(collection text) RETURNS boolean
LANGUAGE plpgsql STRICT
AS $$
DECLARE
    box     box2d;
    t0      timestamptz;
    t1      timestamptz;
    n       bigint;
    content jsonb;
    ext     jsonb;
    list    jsonb;
BEGIN
    DELETE FROM host.extent_queue q WHERE q.collection = update_extent.collection;
    -- Lock first, aggregate after: a caller that waited here then sees the
    -- items of the transaction it waited for. NO KEY UPDATE does not conflict
    -- with the KEY SHARE locks that concurrent item inserts hold.
    SELECT c.content INTO content FROM host.collections c
     WHERE c.id = update_extent.collection FOR NO KEY UPDATE;
    SELECT ST_Extent(i.geometry), min(i.start_datetime), max(i.end_datetime), count(*)
      INTO box, t0, t1, n
      FROM host.items i WHERE i.collection = update_extent.collection;
    IF n = 0 OR content IS NULL THEN
        RETURN false;
    END IF;

    ext := CASE WHEN jsonb_typeof(content -> 'extent') = 'object'
                THEN content -> 'extent' ELSE '{}' END;
    IF box IS NOT NULL THEN
        list := ext #> '{spatial,bbox}';
        list := host.replace_first(list, jsonb_build_array(
            ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)));
        ext := jsonb_set(ext, '{spatial}', coalesce(
            CASE WHEN jsonb_typeof(ext -> 'spatial') = 'object' THEN ext -> 'spatial' END,
            '{}') || jsonb_build_object('bbox', list));
    END IF;
    list := host.replace_first(ext #> '{temporal,interval}',
        jsonb_build_array(host.rfc3339(t0), host.rfc3339(t1)));
    ext := jsonb_set(ext, '{temporal}', coalesce(
        CASE WHEN jsonb_typeof(ext -> 'temporal') = 'object' THEN ext -> 'temporal' END,
        '{}') || jsonb_build_object('interval', list));

    UPDATE host.collections c SET content = jsonb_set(c.content, '{extent}', ext)
     WHERE c.id = update_extent.collection
       AND c.content -> 'extent' IS DISTINCT FROM ext;
    RETURN true;
END
$$;

-- `list` with its first element replaced by `first` (or [first] if `list` is
-- not a non-empty array).
CREATE FUNCTION host.replace_first(list jsonb, first jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(list) = 'array' AND jsonb_array_length(list) > 0
                THEN jsonb_set(list, '{0}', first)
                ELSE jsonb_build_array(first) END
$$;

-- Recomputes the extents of every queued collection; returns how many.
-- Concurrent drains split the queue between them (SKIP LOCKED).
CREATE FUNCTION host.drain_extent_queue() RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    c text;
    n integer := 0;
BEGIN
    FOR c IN SELECT q.collection FROM host.extent_queue q
              ORDER BY q.collection FOR UPDATE SKIP LOCKED LOOP
        PERFORM host.update_extent(c);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- What a load (or a delete) calls once it has changed items of these
-- collections: recompute their extents now, queue them, or nothing, as `mode`
-- says (NULL: the `update_extents` setting). Collections are handled in id
-- order so concurrent callers lock them in the same order.
CREATE FUNCTION host.items_changed(collections text[], mode text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    m text := coalesce(mode,
        (SELECT s.value FROM host.settings s WHERE s.key = 'update_extents'), 'off');
BEGIN
    IF m = 'immediate' THEN
        PERFORM host.update_extent(c)
           FROM (SELECT DISTINCT unnest(collections) AS c ORDER BY 1) u;
    ELSIF m = 'deferred' THEN
        INSERT INTO host.extent_queue (collection)
        SELECT DISTINCT unnest(collections) ORDER BY 1
        ON CONFLICT DO NOTHING;
    ELSIF m <> 'off' THEN
        RAISE EXCEPTION 'update_extents must be off, immediate or deferred, not %', m;
    END IF;
END
$$;
