-- The aggregate's lock as a row lock (issue 27), not the advisory lock 72730015.
--
-- 0010's writers' triggers took the transaction-level advisory lock 72730015 shared, and the
-- node-map refresh and the rebuild took it exclusively (docs/aggregates.md, lock order). Any
-- role that may connect (PostgreSQL 13 lets PUBLIC connect) can take that advisory lock too:
-- SELECT pg_advisory_lock(72730015) held it exclusively and every writer of prices (batches,
-- retractions, plain SQL) waited behind it until its lock_timeout, a 503 for every batch.
-- Now the lock is the row 'aggregate' of rates_locks: writers lock it FOR SHARE, the refresh
-- and the rebuild FOR UPDATE, in the same places and the same order as before. Locking a row
-- needs UPDATE on the table, which only rates_owner (the functions' owner) holds.
CREATE TABLE IF NOT EXISTS public.rates_locks (
    name text PRIMARY KEY
);
INSERT INTO public.rates_locks (name) VALUES ('aggregate') ON CONFLICT DO NOTHING;
REVOKE ALL ON public.rates_locks FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        GRANT SELECT, UPDATE ON public.rates_locks TO rates_owner;
    ELSE
        RAISE WARNING 'role rates_owner is missing: the aggregate functions keep their owner';
    END IF;
END
$$;

-- The three functions of 0010 that took 72730015, with the row lock in its place (their
-- owner, rates_owner since 0010/0013, is kept by CREATE OR REPLACE).

CREATE OR REPLACE FUNCTION public.rates_daily_on_prices() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM 1 FROM public.rates_locks l WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR SHARE;
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

CREATE OR REPLACE FUNCTION public.rates_nodes_refresh() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed text[];
BEGIN
    -- Twice: a statement that changes no node (a port renamed, a name edited) returns
    -- without waiting for the batches in flight; one that does re-reads under the lock.
    FOR pass IN 1..2 LOOP
        IF pass = 2 THEN
            PERFORM 1 FROM public.rates_locks l
             WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR UPDATE;
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

CREATE OR REPLACE FUNCTION public.rates_daily_rebuild() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fixed bigint := 0;
    k bigint;
BEGIN
    PERFORM 1 FROM public.rates_locks l WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR UPDATE;
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
