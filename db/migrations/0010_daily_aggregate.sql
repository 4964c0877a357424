-- Daily aggregates maintained at ingest (issue 15): docs/aggregates.md.
--
-- rates_nodes(code, node): for every port, the nodes it counts under: its own code and every
-- region above it (walked up parent_slug, depth-bounded like region_ports(), so a cycle in
-- corrupt data cannot hang it). DISTINCT, so a port code that is also the slug of one of its
-- regions counts once, exactly as region_ports()'s "the value itself plus its ports" does.
--
-- rates_daily(orig_node, dest_node, day) -> (n, total): count and sum of every price whose
-- origin port counts under orig_node and destination port under dest_node (design (b) of the
-- doc). Every /rates answer, port or region, is one primary-key range scan of span rows:
-- avg = (total::numeric / n)::float8, which is bit for bit what avg(integer)::float8 computes
-- (int8 sum and count, numeric division, float8 cast). Rows whose n fell to 0 stay (they
-- are reused by the next batch on that key and are never read: readers ask n > 0).
--
-- Who writes it: only the SECURITY DEFINER functions below, owned by rates_owner; rates_app
-- and PUBLIC may read it. Every writer of prices goes through the statement-level triggers
-- (INSERT, COPY, UPDATE, DELETE with transition tables; TRUNCATE), in the writer's own
-- transaction. Lock order for everything a writer updates besides prices (docs/aggregates.md):
--   1. the shared advisory lock RATES_AGG_LOCK (72730015) for the transaction; the rare
--      rewrites of the node map and the rebuild take it exclusively, so they never see
--      (or make) a half-applied batch;
--   2. the rates_daily rows, in key order (orig_node, dest_node, day): every upsert sorts;
--   3. (issue 16) the data-version row, last.
-- ON CONFLICT DO UPDATE adds to the row under its lock: concurrent batches on the same keys
-- wait for each other in one order (no deadlock) and lose nothing.

-- Node columns are COLLATE "C" (here and in rates_daily): equality is byte equality under
-- any deterministic collation, so no answer changes, but every B-tree descent, merge join
-- and sort of the triggers compares bytes instead of calling strcoll() and may use
-- abbreviated keys (measured 6-10% off the trigger's time, docs/aggregates.md). Text compared
-- with them in the default collation (prices' codes, query parameters) takes "C".
CREATE TABLE IF NOT EXISTS public.rates_nodes (
    code text COLLATE "C" NOT NULL,
    node text COLLATE "C" NOT NULL,
    CONSTRAINT rates_nodes_pkey PRIMARY KEY (code, node)
);

-- fillfactor 70: the region-pair rows that every batch updates keep their new versions on
-- the same page (n and total are not indexed, so the updates are HOT). The primary key is
-- added after the backfill below (an index built by one sort, not row by row).
CREATE TABLE public.rates_daily (
    orig_node text COLLATE "C" NOT NULL,
    dest_node text COLLATE "C" NOT NULL,
    day date NOT NULL,
    n bigint NOT NULL,
    total bigint NOT NULL
) WITH (fillfactor = 70);

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

-- The node map the tree and the ports call for now (not SECURITY DEFINER: it only reads).
CREATE OR REPLACE FUNCTION public.rates_nodes_wanted() RETURNS TABLE (code text, node text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE up(code, node, depth) AS (
        SELECT p.code, p.code, 0 FROM public.ports p
        UNION
        SELECT p.code, p.parent_slug, 1 FROM public.ports p
        UNION
        SELECT u.code, r.parent_slug, u.depth + 1 FROM up u
        JOIN public.regions r ON r.slug = u.node
        WHERE u.depth >= 1 AND u.depth < 65 AND r.parent_slug IS NOT NULL
    )
    SELECT DISTINCT up.code, up.node FROM up
$$;

-- Adds sign x the prices of routes touching codes (or, codes NULL, every price) to the
-- aggregate, through the node map as it stands. Called by the definer functions only.
CREATE OR REPLACE FUNCTION public.rates_daily_add_prices(codes text[], sign integer)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO public.rates_daily AS a (orig_node, dest_node, day, n, total)
    SELECT mo.node, md.node, r.day, pg_catalog.sum(r.n)::bigint * sign,
           pg_catalog.sum(r.s)::bigint * sign
      FROM (SELECT p.orig_code, p.dest_code, p.day, pg_catalog.count(*) AS n,
                   pg_catalog.sum(p.price) AS s
              FROM public.prices p
             WHERE codes IS NULL OR p.orig_code = ANY (codes) OR p.dest_code = ANY (codes)
             GROUP BY p.orig_code, p.dest_code, p.day) r
      JOIN public.rates_nodes mo ON mo.code = r.orig_code
      JOIN public.rates_nodes md ON md.code = r.dest_code
     GROUP BY mo.node, md.node, r.day
     ORDER BY mo.node, md.node, r.day
    ON CONFLICT (orig_node, dest_node, day)
    DO UPDATE SET n = a.n + excluded.n, total = a.total + excluded.total
$$;

-- Statement-level maintenance on prices. INSERT and COPY add the new rows, DELETE subtracts
-- the old, UPDATE does both in one sorted upsert (rows whose net change is zero, such as
-- an update of batch_id only, are not touched); TRUNCATE empties the aggregate.
CREATE OR REPLACE FUNCTION public.rates_daily_on_prices() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(72730015);
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE public.rates_daily;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.rates_daily AS a (orig_node, dest_node, day, n, total)
        SELECT mo.node, md.node, r.day, pg_catalog.sum(r.n)::bigint,
               pg_catalog.sum(r.s)::bigint
          FROM (SELECT x.orig_code, x.dest_code, x.day, pg_catalog.count(*) AS n,
                       pg_catalog.sum(x.price) AS s
                  FROM new_rows x GROUP BY x.orig_code, x.dest_code, x.day) r
          JOIN public.rates_nodes mo ON mo.code = r.orig_code
          JOIN public.rates_nodes md ON md.code = r.dest_code
         GROUP BY mo.node, md.node, r.day
         ORDER BY mo.node, md.node, r.day
        ON CONFLICT (orig_node, dest_node, day)
        DO UPDATE SET n = a.n + excluded.n, total = a.total + excluded.total;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO public.rates_daily AS a (orig_node, dest_node, day, n, total)
        SELECT mo.node, md.node, r.day, -pg_catalog.sum(r.n)::bigint,
               -pg_catalog.sum(r.s)::bigint
          FROM (SELECT x.orig_code, x.dest_code, x.day, pg_catalog.count(*) AS n,
                       pg_catalog.sum(x.price) AS s
                  FROM old_rows x GROUP BY x.orig_code, x.dest_code, x.day) r
          JOIN public.rates_nodes mo ON mo.code = r.orig_code
          JOIN public.rates_nodes md ON md.code = r.dest_code
         GROUP BY mo.node, md.node, r.day
         ORDER BY mo.node, md.node, r.day
        ON CONFLICT (orig_node, dest_node, day)
        DO UPDATE SET n = a.n + excluded.n, total = a.total + excluded.total;
    ELSE
        INSERT INTO public.rates_daily AS a (orig_node, dest_node, day, n, total)
        SELECT mo.node, md.node, r.day, pg_catalog.sum(r.n)::bigint,
               pg_catalog.sum(r.s)::bigint
          FROM (SELECT x.orig_code, x.dest_code, x.day, pg_catalog.sum(x.sg) AS n,
                       pg_catalog.sum(x.sg * x.price::bigint) AS s
                  FROM (SELECT o.orig_code, o.dest_code, o.day, o.price, -1 AS sg
                          FROM old_rows o
                        UNION ALL
                        SELECT w.orig_code, w.dest_code, w.day, w.price, 1 FROM new_rows w) x
                 GROUP BY x.orig_code, x.dest_code, x.day) r
          JOIN public.rates_nodes mo ON mo.code = r.orig_code
          JOIN public.rates_nodes md ON md.code = r.dest_code
         GROUP BY mo.node, md.node, r.day
        HAVING pg_catalog.sum(r.n) <> 0 OR pg_catalog.sum(r.s) <> 0
         ORDER BY mo.node, md.node, r.day
        ON CONFLICT (orig_node, dest_node, day)
        DO UPDATE SET n = a.n + excluded.n, total = a.total + excluded.total;
    END IF;
    RETURN NULL;
END
$$;

-- After any statement on ports or regions: when the node map changes (a port moved, a
-- region re-parented, a port added), the affected ports' prices are taken out under the old
-- map and put back under the new one, in this transaction, under the exclusive lock.
CREATE OR REPLACE FUNCTION public.rates_nodes_refresh() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed text[];
BEGIN
    -- Twice: a statement that changes no node (a port renamed, a name edited) returns
    -- without waiting for the batches in flight; one that does re-reads under the lock.
    FOR pass IN 1..2 LOOP
        IF pass = 2 THEN
            PERFORM pg_catalog.pg_advisory_xact_lock(72730015);
        END IF;
        SELECT pg_catalog.array_agg(DISTINCT c.code) INTO changed
          FROM ((SELECT w.code, w.node FROM public.rates_nodes_wanted() w
                 EXCEPT SELECT m.code, m.node FROM public.rates_nodes m)
                UNION ALL
                (SELECT m.code, m.node FROM public.rates_nodes m
                 EXCEPT SELECT w.code, w.node FROM public.rates_nodes_wanted() w)) c;
        IF changed IS NULL THEN
            RETURN NULL;
        END IF;
    END LOOP;
    PERFORM public.rates_daily_add_prices(changed, -1);
    DELETE FROM public.rates_nodes m WHERE m.code = ANY (changed);
    INSERT INTO public.rates_nodes (code, node)
    SELECT w.code, w.node FROM public.rates_nodes_wanted() w WHERE w.code = ANY (changed);
    PERFORM public.rates_daily_add_prices(changed, 1);
    RETURN NULL;
END
$$;

-- What the aggregate should hold against what it holds: one row per difference (kind
-- 'node' for the node map, 'daily' for the aggregate; NULL on the side that lacks the row).
-- Runs as its caller (rates_app may run it: it only reads).
CREATE OR REPLACE FUNCTION public.rates_daily_diff()
RETURNS TABLE (kind text, orig_node text, dest_node text, day date, want_n bigint,
               have_n bigint, want_total bigint, have_total bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH want AS (
        SELECT mo.node AS o, md.node AS d, r.day, pg_catalog.sum(r.n)::bigint AS n,
               pg_catalog.sum(r.s)::bigint AS s
          FROM (SELECT p.orig_code, p.dest_code, p.day, pg_catalog.count(*) AS n,
                       pg_catalog.sum(p.price) AS s
                  FROM public.prices p GROUP BY p.orig_code, p.dest_code, p.day) r
          JOIN public.rates_nodes_wanted() mo ON mo.code = r.orig_code
          JOIN public.rates_nodes_wanted() md ON md.code = r.dest_code
         GROUP BY mo.node, md.node, r.day
    ), have AS (
        SELECT a.orig_node AS o, a.dest_node AS d, a.day, a.n, a.total AS s
          FROM public.rates_daily a WHERE a.n <> 0 OR a.total <> 0
    )
    SELECT 'node', COALESCE(w.code, m.code), COALESCE(w.node, m.node),
           NULL::date, CASE WHEN w.code IS NULL THEN 0 ELSE 1 END::bigint,
           CASE WHEN m.code IS NULL THEN 0 ELSE 1 END::bigint, NULL::bigint, NULL::bigint
      FROM public.rates_nodes_wanted() w
      FULL JOIN public.rates_nodes m ON m.code = w.code AND m.node = w.node
     WHERE w.code IS NULL OR m.code IS NULL
    UNION ALL
    SELECT 'daily', COALESCE(w.o, h.o), COALESCE(w.d, h.d),
           COALESCE(w.day, h.day), w.n, h.n, w.s, h.s
      FROM want w FULL JOIN have h ON h.o = w.o AND h.d = w.d AND h.day = w.day
     WHERE w.n IS DISTINCT FROM h.n OR w.s IS DISTINCT FROM h.s
     ORDER BY 1, 2, 3, 4
$$;

-- ratesd aggregates rebuild: the node map and the aggregate from raw prices, in one
-- transaction under the exclusive lock (writers' triggers wait; readers never do). Only
-- the rows that differ are written; returns how many.
CREATE OR REPLACE FUNCTION public.rates_daily_rebuild() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fixed bigint := 0;
    k bigint;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(72730015);
    DELETE FROM public.rates_nodes m
     WHERE NOT EXISTS (SELECT 1 FROM public.rates_nodes_wanted() w
                        WHERE w.code = m.code AND w.node = m.node);
    GET DIAGNOSTICS k = ROW_COUNT;
    fixed := fixed + k;
    INSERT INTO public.rates_nodes (code, node)
    SELECT w.code, w.node FROM public.rates_nodes_wanted() w
    ON CONFLICT (code, node) DO NOTHING;
    GET DIAGNOSTICS k = ROW_COUNT;
    fixed := fixed + k;
    WITH want AS (
        SELECT mo.node AS o, md.node AS d, r.day, pg_catalog.sum(r.n)::bigint AS n,
               pg_catalog.sum(r.s)::bigint AS s
          FROM (SELECT p.orig_code, p.dest_code, p.day, pg_catalog.count(*) AS n,
                       pg_catalog.sum(p.price) AS s
                  FROM public.prices p GROUP BY p.orig_code, p.dest_code, p.day) r
          JOIN public.rates_nodes mo ON mo.code = r.orig_code
          JOIN public.rates_nodes md ON md.code = r.dest_code
         GROUP BY mo.node, md.node, r.day
    ), gone AS (
        DELETE FROM public.rates_daily a
         WHERE NOT EXISTS (SELECT 1 FROM want w
                            WHERE w.o = a.orig_node AND w.d = a.dest_node AND w.day = a.day)
        RETURNING 1
    ), put AS (
        INSERT INTO public.rates_daily AS a (orig_node, dest_node, day, n, total)
        SELECT w.o, w.d, w.day, w.n, w.s FROM want w
         WHERE NOT EXISTS (SELECT 1 FROM public.rates_daily x
                            WHERE x.orig_node = w.o AND x.dest_node = w.d AND x.day = w.day
                              AND x.n = w.n AND x.total = w.s)
         ORDER BY w.o, w.d, w.day
        ON CONFLICT (orig_node, dest_node, day)
        DO UPDATE SET n = excluded.n, total = excluded.total
        RETURNING 1
    )
    SELECT (SELECT pg_catalog.count(*) FROM gone) + (SELECT pg_catalog.count(*) FROM put)
      INTO k;
    RETURN fixed + k;
END
$$;

-- The port guard of 0004/0007 asks the aggregate instead of prices (which no longer has an
-- index by route): a port's prices as origin are the rows (port, any, day); as destination,
-- the rows (any port, port, day), one primary-key probe per port. A slug equal to the code
-- can only make the guard refuse, never let a referenced port go.
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
    IF EXISTS (SELECT 1 FROM public.rates_daily a WHERE a.orig_node = OLD.code AND a.n > 0)
       OR EXISTS (SELECT 1 FROM public.ports p
                  JOIN public.rates_daily a ON a.orig_node = p.code AND a.dest_node = OLD.code
                  WHERE a.n > 0) THEN
        RAISE EXCEPTION 'port "%" is still referenced from table "prices"', OLD.code
            USING ERRCODE = 'foreign_key_violation', TABLE = 'ports';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION public.rates_nodes_wanted() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_daily_add_prices(text[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_daily_on_prices() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_nodes_refresh() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_daily_diff() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_daily_rebuild() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.ports_guard_referenced() FROM PUBLIC;
REVOKE ALL ON public.rates_daily, public.rates_nodes FROM PUBLIC;

-- rates_owner: exactly what the functions above read and write. A migrating role that could
-- not create rates_owner (no CREATEROLE; 0007 warned) or is not a member of it keeps the
-- functions itself, as 0007 does, with a warning (docs/security.md says what a DBA runs).
DO $$
DECLARE
    f text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        RAISE WARNING 'role rates_owner is missing: the aggregate functions keep their owner';
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO rates_owner;
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.rates_daily TO rates_owner;
    GRANT SELECT, INSERT, DELETE ON public.rates_nodes TO rates_owner;
    GRANT SELECT ON public.ports, public.regions TO rates_owner;
    GRANT SELECT (orig_code, dest_code, day, price) ON public.prices TO rates_owner;
    GRANT EXECUTE ON FUNCTION public.rates_nodes_wanted() TO rates_owner;
    GRANT EXECUTE ON FUNCTION public.rates_daily_add_prices(text[], integer) TO rates_owner;
    FOREACH f IN ARRAY ARRAY['public.rates_daily_add_prices(text[], integer)',
                             'public.rates_daily_on_prices()', 'public.rates_nodes_refresh()',
                             'public.rates_daily_rebuild()', 'public.ports_guard_referenced()']
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO rates_owner', f);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'cannot give % to rates_owner; see docs/security.md', f;
        END;
    END LOOP;
END
$$;

-- The service reads the aggregate and may run the check; it cannot write either table.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
        GRANT SELECT ON public.rates_daily, public.rates_nodes TO rates_app;
        GRANT EXECUTE ON FUNCTION public.rates_nodes_wanted() TO rates_app;
        GRANT EXECUTE ON FUNCTION public.rates_daily_diff() TO rates_app;
    END IF;
END
$$;

-- Expand: build from the rows already there, then keep it right from now on. The exclusive
-- lock and SHARE on prices (writers wait for this transaction; readers do not) make the
-- backfill and the triggers start from the same rows.
LOCK TABLE public.prices IN SHARE MODE;
SET LOCAL work_mem = '128MB';
SET LOCAL maintenance_work_mem = '256MB';
SELECT pg_catalog.pg_advisory_xact_lock(72730015);
INSERT INTO public.rates_nodes (code, node)
SELECT w.code, w.node FROM public.rates_nodes_wanted() w ON CONFLICT DO NOTHING;
INSERT INTO public.rates_daily (orig_node, dest_node, day, n, total)
SELECT mo.node, md.node, r.day, pg_catalog.sum(r.n)::bigint, pg_catalog.sum(r.s)::bigint
  FROM (SELECT p.orig_code, p.dest_code, p.day, pg_catalog.count(*) AS n,
               pg_catalog.sum(p.price) AS s
          FROM public.prices p GROUP BY p.orig_code, p.dest_code, p.day) r
  JOIN public.rates_nodes mo ON mo.code = r.orig_code
  JOIN public.rates_nodes md ON md.code = r.dest_code
 GROUP BY mo.node, md.node, r.day;
ALTER TABLE public.rates_daily
    ADD CONSTRAINT rates_daily_pkey PRIMARY KEY (orig_node, dest_node, day);

DROP TRIGGER IF EXISTS prices_daily_insert ON public.prices;
CREATE TRIGGER prices_daily_insert AFTER INSERT ON public.prices
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_daily_on_prices();
DROP TRIGGER IF EXISTS prices_daily_update ON public.prices;
CREATE TRIGGER prices_daily_update AFTER UPDATE ON public.prices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_daily_on_prices();
DROP TRIGGER IF EXISTS prices_daily_delete ON public.prices;
CREATE TRIGGER prices_daily_delete AFTER DELETE ON public.prices
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_daily_on_prices();
DROP TRIGGER IF EXISTS prices_daily_truncate ON public.prices;
CREATE TRIGGER prices_daily_truncate AFTER TRUNCATE ON public.prices
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_daily_on_prices();
DROP TRIGGER IF EXISTS ports_daily_nodes ON public.ports;
CREATE TRIGGER ports_daily_nodes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ports
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_nodes_refresh();
DROP TRIGGER IF EXISTS regions_daily_nodes ON public.regions;
CREATE TRIGGER regions_daily_nodes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON public.regions FOR EACH STATEMENT EXECUTE FUNCTION public.rates_nodes_refresh();
