-- The data version (issue 16, docs/cache.md): one global, monotonic counter of what /rates,
-- /regions and /ports read, bumped by a statement-level trigger in the same transaction as
-- every change of prices (INSERT, COPY, UPDATE, DELETE, TRUNCATE), ports and regions. Readers
-- select it in the same statement as the data, so an answer is labelled with the version of
-- its own snapshot (a lagging replica's answer carries the replica's version, never a newer
-- one). The bump also sends NOTIFY rates_data_version (payload: the new version), delivered at
-- commit, to the instances' cache listeners.
--
-- Granularity: global. Writes are sporadic batches (seconds to hours apart) and each batch
-- touches many routes and every region pair above them, so a finer key (per route or region
-- pair) would invalidate most region answers anyway while costing one row lock per key per
-- batch. One row, locked LAST in a writer's transaction (docs/aggregates.md, lock order):
-- its triggers are named zz_* so they fire after the aggregate's on the same statement.
--
-- Who writes it: only rates_data_version_bump(), SECURITY DEFINER owned by rates_owner;
-- rates_app may read it.
CREATE TABLE IF NOT EXISTS public.rates_data_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO public.rates_data_version (id, version) VALUES (1, 1) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION public.rates_data_version_bump() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v bigint;
BEGIN
    -- At least the previous + 1, and at least the clock in microseconds: after a failover
    -- that lost the last commits (asynchronous replication), new versions are still above
    -- any the lost ones had, so an ETag is never reused for other data.
    UPDATE public.rates_data_version d SET version = GREATEST(
        d.version OPERATOR(pg_catalog.+) 1,
        (pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())
            OPERATOR(pg_catalog.*) 1000000)::bigint)
     WHERE d.id OPERATOR(pg_catalog.=) 1 RETURNING d.version INTO v;
    PERFORM pg_catalog.pg_notify('rates_data_version', v::text);
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION public.rates_data_version_bump() FROM PUBLIC;
REVOKE ALL ON public.rates_data_version FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        RAISE WARNING 'role rates_owner is missing: rates_data_version_bump() keeps its owner';
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO rates_owner;
    GRANT SELECT, UPDATE ON public.rates_data_version TO rates_owner;
    BEGIN
        ALTER FUNCTION public.rates_data_version_bump() OWNER TO rates_owner;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot give rates_data_version_bump() to rates_owner; see docs/security.md';
    END;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
        GRANT SELECT ON public.rates_data_version TO rates_app;
    END IF;
END
$$;

DROP TRIGGER IF EXISTS zz_data_version ON public.prices;
CREATE TRIGGER zz_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.prices
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_data_version_bump();
DROP TRIGGER IF EXISTS zz_data_version ON public.ports;
CREATE TRIGGER zz_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ports
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_data_version_bump();
DROP TRIGGER IF EXISTS zz_data_version ON public.regions;
CREATE TRIGGER zz_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.regions
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_data_version_bump();
