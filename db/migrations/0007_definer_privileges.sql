-- Database privileges (issue 13): the least-privilege role can no longer become superuser.
--
-- The hole: 0004's SECURITY DEFINER triggers ran with search_path = pg_catalog, public and
-- called unnest()/array_agg() unqualified. On PostgreSQL 13 every role may CREATE in schema
-- public, and a function with an exact argument match in a later schema beats a polymorphic
-- built-in (unnest(anyarray)): rates_app could create public.unnest(text[]) and have it run
-- as the trigger's owner (a superuser) on its next INSERT into prices.
--
-- The fix, in layers (each would stop that attack alone):
--   * every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp (pg_temp last,
--     and pg_temp is never searched for functions or operators) and schema-qualifies the
--     functions and tables it uses; public is not on its path at all;
--   * SECURITY DEFINER functions belong to rates_owner: NOLOGIN, no superuser, no
--     CREATEROLE, no CREATE anywhere, holding only the table rights its functions need;
--   * PUBLIC loses CREATE on schema public (PostgreSQL 15's default; 13 grants it);
--   * rates_app keeps CONNECT + TEMPORARY on the database (TEMPORARY is its one creation
--     right: the ingest staging table), USAGE on public and its table rights (0005).
-- The functions that are not SECURITY DEFINER (0006) run as their caller, which may be a
-- superuser at a psql prompt with public first on its search_path: they get the same pinned
-- path and qualified calls. Every statement is idempotent (running this file again changes
-- no role, owner or right; it is not meant to be replayed after later migrations). Later
-- migrations that add SECURITY DEFINER functions do the same: SET
-- search_path = pg_catalog, pg_temp, qualified names, ALTER FUNCTION ... OWNER TO
-- rates_owner, and GRANT rates_owner only what those functions read or lock.
-- docs/security.md has the whole picture and the statements for a DBA.

-- The owner role. Creating it needs CREATEROLE; without it a DBA runs this block by hand.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        BEGIN
            CREATE ROLE rates_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
                NOBYPASSRLS NOINHERIT;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'cannot create role rates_owner; see docs/security.md';
        END;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION public.prices_check_ports() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    codes pg_catalog.text[];
    missing pg_catalog.text;
BEGIN
    -- new_rows is the statement's transition table (found before any schema is searched).
    SELECT pg_catalog.array_agg(u.code) INTO codes
      FROM (SELECT n.orig_code AS code FROM new_rows n
            UNION SELECT n.dest_code FROM new_rows n) u;
    IF codes IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.ports p WHERE p.code = ANY (codes) ORDER BY p.code FOR KEY SHARE OF p;
    SELECT c INTO missing FROM pg_catalog.unnest(codes) c
     WHERE NOT EXISTS (SELECT 1 FROM public.ports p WHERE p.code = c) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "prices" names unknown port "%"', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'prices';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.ports_guard_referenced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM public.prices) THEN
            RAISE EXCEPTION 'cannot truncate ports: prices reference them'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.code = OLD.code THEN
        RETURN NEW;
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ports codes can only be deleted or changed at READ COMMITTED'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF EXISTS (SELECT 1 FROM public.prices WHERE orig_code = OLD.code)
       OR EXISTS (SELECT 1 FROM public.prices WHERE dest_code = OLD.code) THEN
        RAISE EXCEPTION 'port "%" is still referenced from table "prices"', OLD.code
            USING ERRCODE = 'foreign_key_violation', TABLE = 'ports';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

-- Not SECURITY DEFINER: pinned anyway, because whoever calls them lends them its rights.
-- STABLE SQL called from a subquery's select list is never inlined, so SET costs no plan.
CREATE OR REPLACE FUNCTION public.region_ports(root text) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE sub(slug, depth) AS (
        SELECT r.slug, 0 FROM public.regions r WHERE r.slug = root
        UNION
        SELECT r.slug, s.depth + 1 FROM sub s
        JOIN public.regions r ON r.parent_slug = s.slug
        WHERE s.depth < 64
    )
    SELECT p.code FROM public.ports p WHERE p.parent_slug IN (SELECT sub.slug FROM sub)
$$;

CREATE OR REPLACE FUNCTION public.rates_by_day(orig text, dest text, date_from date,
                                               date_to date)
RETURNS TABLE (day_offset integer, n bigint, avg_price double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.regions r WHERE r.slug = orig OR r.slug = dest) THEN
        RETURN QUERY
            SELECT pr.day - date_from, pg_catalog.count(*), pg_catalog.avg(pr.price)::float8
            FROM public.prices pr
            WHERE pr.orig_code = orig AND pr.dest_code = dest
              AND pr.day >= date_from AND pr.day <= date_to
            GROUP BY pr.day ORDER BY pr.day DESC;
    ELSE
        RETURN QUERY
            SELECT pr.day - date_from, pg_catalog.count(*), pg_catalog.avg(pr.price)::float8
            FROM public.prices pr
            WHERE pr.orig_code = ANY (pg_catalog.array_cat(ARRAY[orig],
                                          ARRAY(SELECT public.region_ports(orig))))
              AND pr.dest_code = ANY (pg_catalog.array_cat(ARRAY[dest],
                                          ARRAY(SELECT public.region_ports(dest))))
              AND pr.day >= date_from AND pr.day <= date_to
            GROUP BY pr.day ORDER BY pr.day DESC;
    END IF;
END
$$;

-- rates_owner's rights: exactly what the two trigger functions read or lock. FOR KEY SHARE
-- needs UPDATE on at least one column: ports.name, so that even code running as this role
-- could not change a code. The guard only reads which codes prices use.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO rates_owner;
    GRANT SELECT ON public.ports TO rates_owner;
    GRANT UPDATE (name) ON public.ports TO rates_owner;
    GRANT SELECT (orig_code, dest_code) ON public.prices TO rates_owner;
END
$$;

-- Every SECURITY DEFINER function in public moves to rates_owner (a superuser may always do
-- this; another migrating role must be a member of rates_owner).
DO $$
DECLARE
    f record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        RAISE WARNING 'role rates_owner is missing: SECURITY DEFINER functions keep their owner';
        RETURN;
    END IF;
    FOR f IN SELECT p.oid::pg_catalog.regprocedure AS sig
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND p.prosecdef
                AND p.proowner <> (SELECT oid FROM pg_catalog.pg_roles
                                    WHERE rolname = 'rates_owner')
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO rates_owner', f.sig);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'cannot give % to rates_owner; see docs/security.md', f.sig;
        END;
    END LOOP;
END
$$;

-- Nobody but the schema's owner creates in public; the service's role creates nothing but
-- temporary tables. REVOKE needs the owner of the schema (or database): otherwise say so.
DO $$
BEGIN
    BEGIN
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
            REVOKE CREATE ON SCHEMA public FROM rates_app;
            EXECUTE pg_catalog.format('REVOKE CREATE ON DATABASE %I FROM rates_app',
                                      pg_catalog.current_database());
        END IF;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;   -- a role without any right on the schema: the check below says what to do
    END;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n,
                    LATERAL pg_catalog.aclexplode(n.nspacl) a
                WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') THEN
        RAISE WARNING 'PUBLIC still has CREATE on schema public: its owner must run '
                      'REVOKE CREATE ON SCHEMA public FROM PUBLIC (docs/security.md)';
    END IF;
END
$$;
