-- Gives every SECURITY DEFINER function in public to rates_owner, also when the migrating role
-- is not a superuser (docs/security.md, "When the migrating role is not a superuser").
--
-- Why: ALTER FUNCTION ... OWNER TO needs the new owner to hold CREATE on the function's schema.
-- 0007 gives its functions away while PUBLIC still holds CREATE on public (PostgreSQL 13's
-- default) and then revokes it; 0010 and 0012 run after that revoke, so for a migrator that is
-- not a superuser (a managed database, the compose ha profile) their functions stayed with the
-- migrator, a LOGIN role, with a WARNING. A superuser bypasses the check: there this is a no-op.
--
-- How: when some definer function is not rates_owner's, CREATE on public is granted to
-- rates_owner for this transaction only (the migrator owns the schema, or the GRANT gives
-- nothing and the WARNING below says so), the functions are given away, and the grant is
-- revoked before commit: rates_owner never holds CREATE outside this transaction, and it
-- cannot log in. Later migrations that add SECURITY DEFINER functions end with the same block.
DO $$
DECLARE
    f record;
    owner_oid oid;
    granted boolean := false;
BEGIN
    SELECT oid INTO owner_oid FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner';
    IF owner_oid IS NULL THEN
        RAISE WARNING 'role rates_owner is missing: SECURITY DEFINER functions keep their owner';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' AND p.prosecdef AND p.proowner <> owner_oid) THEN
        RETURN;
    END IF;
    IF NOT pg_catalog.has_schema_privilege(owner_oid, 'public', 'CREATE') THEN
        GRANT CREATE ON SCHEMA public TO rates_owner;
        granted := pg_catalog.has_schema_privilege(owner_oid, 'public', 'CREATE');
    END IF;
    FOR f IN SELECT p.oid::pg_catalog.regprocedure AS sig
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND p.prosecdef AND p.proowner <> owner_oid
              ORDER BY 1
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO rates_owner', f.sig);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'cannot give % to rates_owner; see docs/security.md', f.sig;
        END;
    END LOOP;
    IF granted THEN
        REVOKE CREATE ON SCHEMA public FROM rates_owner;
    END IF;
END
$$;
