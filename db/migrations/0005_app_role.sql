-- The least-privilege role the service connects as: read the reference tables, append and
-- retract prices, keep the batch ledger. Not a superuser, not an owner of any table (so it
-- cannot disable triggers, alter tables or change session_replication_role).
-- Creating a role needs CREATEROLE; when the migrating role lacks it, a DBA runs the same
-- statements (docs/ingest.md) and this migration only grants.
-- The role has no password here: set one (ALTER ROLE rates_app PASSWORD ...) or use
-- certificate/peer authentication in pg_hba.conf.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
        BEGIN
            CREATE ROLE rates_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
                NOBYPASSRLS;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role rates_app; see docs/ingest.md';
            RETURN;
        END;
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO rates_app', current_database());
    GRANT USAGE ON SCHEMA public TO rates_app;
    GRANT SELECT ON public.regions, public.ports, public.schema_migrations TO rates_app;
    GRANT SELECT, INSERT, DELETE ON public.prices TO rates_app;
    GRANT SELECT, INSERT, UPDATE ON public.batches TO rates_app;
    GRANT USAGE ON SEQUENCE public.batches_id_seq TO rates_app;
END
$$;
