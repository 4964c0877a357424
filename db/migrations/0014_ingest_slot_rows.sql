-- Global batch slots as row locks (issue 27), not advisory locks.
--
-- Until now a batch took one of RATES_GLOBAL_CONCURRENT_BATCHES slots as the session-level
-- advisory lock (72730002, 1..N). Any role that may connect (PostgreSQL 13 lets PUBLIC
-- connect) can take advisory locks too: SELECT pg_advisory_lock(72730002, s) FROM
-- generate_series(1, 8) s held every slot and refused every batch with 503 until that session
-- ended. Now a slot is a row of ingest_slots locked FOR UPDATE SKIP LOCKED inside the batch's
-- transaction (released by its commit or rollback). Locking a row needs UPDATE on the table:
-- only rates_owner has it, through ingest_take_slot(), which only rates_app may execute.
CREATE TABLE IF NOT EXISTS public.ingest_slots (
    slot integer PRIMARY KEY CHECK (slot BETWEEN 1 AND 10000)
);
-- One row per slot the option can ask for (RATES_GLOBAL_CONCURRENT_BATCHES is 1..10000).
INSERT INTO public.ingest_slots (slot)
SELECT s FROM pg_catalog.generate_series(1, 10000) s ON CONFLICT DO NOTHING;

-- The lowest free slot of 1..n, locked until the caller's transaction ends; NULL: none free.
CREATE OR REPLACE FUNCTION public.ingest_take_slot(n integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.slot FROM public.ingest_slots s
     WHERE s.slot OPERATOR(pg_catalog.<=) n
     ORDER BY s.slot LIMIT 1 FOR UPDATE SKIP LOCKED
$$;

REVOKE ALL ON public.ingest_slots FROM PUBLIC;
REVOKE ALL ON FUNCTION public.ingest_take_slot(integer) FROM PUBLIC;

DO $$
DECLARE
    owner_oid oid;
    granted boolean := false;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
        GRANT EXECUTE ON FUNCTION public.ingest_take_slot(integer) TO rates_app;
    END IF;
    SELECT oid INTO owner_oid FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner';
    IF owner_oid IS NULL THEN
        RAISE WARNING 'role rates_owner is missing: ingest_take_slot() keeps its owner';
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO rates_owner;
    GRANT SELECT, UPDATE ON public.ingest_slots TO rates_owner;
    -- As 0013: CREATE on public for rates_owner for this transaction only, when needed.
    IF NOT pg_catalog.has_schema_privilege(owner_oid, 'public', 'CREATE') THEN
        GRANT CREATE ON SCHEMA public TO rates_owner;
        granted := pg_catalog.has_schema_privilege(owner_oid, 'public', 'CREATE');
    END IF;
    BEGIN
        ALTER FUNCTION public.ingest_take_slot(integer) OWNER TO rates_owner;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot give ingest_take_slot(integer) to rates_owner; see docs/security.md';
    END;
    IF granted THEN
        REVOKE CREATE ON SCHEMA public FROM rates_owner;
    END IF;
END
$$;
