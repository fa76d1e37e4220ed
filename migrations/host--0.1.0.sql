-- host schema 0.1.0, installed from nothing: STAC collections, and their items
-- in one list partition per collection.
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
