-- The aggregate leaves the writer's transaction (issue 26, docs/aggregates.md).
--
-- Until now every writer of prices upserted rates_daily in its own transaction: 1.7 to 5.6
-- node-pair keys per price, read-modify-write of shared rows, ~95 % of a batch's time. From
-- here a writer appends, per statement, one row per (origin port, destination port, day) it
-- touched to rates_changes: (version, orig_code, dest_code, day, n, total), a plain heap with
-- no index, grouped from the statement's transition table. The fold (rates_fold(), run by
-- the service in the background and by anyone who may EXECUTE it) moves committed change
-- rows into rates_daily through the node map, off the commit path.
--
-- Readers see fold + unfolded tail in one snapshot: src/rates.c reads rates_daily and the
-- tail rows of its two nodes in one statement, rates_daily_diff() (ratesd aggregates check)
-- compares raw prices with both. The fold moves rows from the tail into rates_daily in one
-- transaction, so no snapshot sees a row twice or not at all.
--
-- Versions: the change trigger bumps rates_data_version itself (the zz_data_version trigger
-- of 0012 on prices goes) and tags its rows with the new version. The version row stays
-- locked until the writer commits, so versions are in commit order. The fold bumps it too
-- when it moved rows: a binary that reads rates_daily alone (the one before this migration,
-- during a rolling upgrade) sees a batch once it is folded, under a new version, and its
-- response cache is invalidated then.
--
-- Lock order (docs/aggregates.md):
-- (the aggregate's lock is the row 'aggregate' of rates_locks since 0015, not an advisory lock
-- that any role could take; "shared" is FOR SHARE, "exclusive" FOR UPDATE)
--   writers:  the aggregate's lock shared, then the data-version row;
--   fold:     the rates_fold_state row (FOR UPDATE SKIP LOCKED: one fold at a time, the others
--             return at once; rates_app has no UPDATE on that table, so only the definer
--             function can take it), the aggregate's lock shared, rates_daily rows in key order,
--             the data-version row;
--   node-map rewrites and rebuild: the aggregate's lock exclusive (waits for writers in flight),
--             then they fold everything under it before they touch rates_daily.

CREATE TABLE IF NOT EXISTS public.rates_changes (
    version bigint NOT NULL,
    orig_code text COLLATE "C" NOT NULL,
    dest_code text COLLATE "C" NOT NULL,
    day date NOT NULL,
    n bigint NOT NULL,
    total bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS public.rates_fold_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    folded_version bigint NOT NULL,
    folded_at timestamptz NOT NULL,
    folded_rows bigint NOT NULL
);
INSERT INTO public.rates_fold_state (id, folded_version, folded_at, folded_rows)
VALUES (1, 0, pg_catalog.now(), 0) ON CONFLICT DO NOTHING;

-- Bumps the data version (row locked until commit) and notifies; returns the new version.
-- The same arithmetic as 0012's rates_data_version_bump().
CREATE OR REPLACE FUNCTION public.rates_version_next() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE public.rates_data_version d SET version = GREATEST(
        d.version OPERATOR(pg_catalog.+) 1,
        (pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())
            OPERATOR(pg_catalog.*) 1000000)::bigint)
     WHERE d.id OPERATOR(pg_catalog.=) 1 RETURNING d.version INTO v;
    PERFORM pg_catalog.pg_notify('rates_data_version', v::text);
    RETURN v;
END
$$;

-- The writers' side: one grouped append per statement, nothing read or updated in place.
CREATE OR REPLACE FUNCTION public.rates_changes_on_prices() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v bigint;
BEGIN
    PERFORM 1 FROM public.rates_locks l WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR SHARE;
    v := public.rates_version_next();
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE public.rates_daily, public.rates_changes;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO public.rates_changes (version, orig_code, dest_code, day, n, total)
        SELECT v, x.orig_code, x.dest_code, x.day, pg_catalog.count(*),
               pg_catalog.sum(x.price)
          FROM new_rows x GROUP BY x.orig_code, x.dest_code, x.day;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO public.rates_changes (version, orig_code, dest_code, day, n, total)
        SELECT v, x.orig_code, x.dest_code, x.day, -pg_catalog.count(*),
               -pg_catalog.sum(x.price)
          FROM old_rows x GROUP BY x.orig_code, x.dest_code, x.day;
    ELSE
        INSERT INTO public.rates_changes (version, orig_code, dest_code, day, n, total)
        SELECT v, x.orig_code, x.dest_code, x.day, pg_catalog.sum(x.sg),
               pg_catalog.sum(x.sg * x.price::bigint)
          FROM (SELECT o.orig_code, o.dest_code, o.day, o.price, -1 AS sg FROM old_rows o
                UNION ALL
                SELECT w.orig_code, w.dest_code, w.day, w.price, 1 FROM new_rows w) x
         GROUP BY x.orig_code, x.dest_code, x.day
        HAVING pg_catalog.sum(x.sg) <> 0 OR pg_catalog.sum(x.sg * x.price::bigint) <> 0;
    END IF;
    RETURN NULL;
END
$$;

-- Moves every committed change row into rates_daily through the node map; returns how many
-- rows it moved. The caller holds the aggregate's lock (shared or exclusive). Not
-- callable by anyone but the owner's functions.
CREATE OR REPLACE FUNCTION public.rates_fold_locked() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    moved bigint;
    top bigint;
BEGIN
    SELECT pg_catalog.max(c.version) INTO top FROM public.rates_changes c;
    IF top IS NULL THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM public.rates_changes c WHERE c.version <= top
        RETURNING c.orig_code, c.dest_code, c.day, c.n, c.total
    ), ins AS (
        INSERT INTO public.rates_daily AS a (orig_node, dest_node, day, n, total)
        SELECT mo.node, md.node, r.day, pg_catalog.sum(r.n)::bigint, pg_catalog.sum(r.s)::bigint
          FROM (SELECT g.orig_code, g.dest_code, g.day, pg_catalog.sum(g.n) AS n,
                       pg_catalog.sum(g.total) AS s
                  FROM gone g GROUP BY g.orig_code, g.dest_code, g.day) r
          JOIN public.rates_nodes mo ON mo.code = r.orig_code
          JOIN public.rates_nodes md ON md.code = r.dest_code
         GROUP BY mo.node, md.node, r.day
        HAVING pg_catalog.sum(r.n) <> 0 OR pg_catalog.sum(r.s) <> 0
         ORDER BY mo.node, md.node, r.day
        ON CONFLICT (orig_node, dest_node, day)
        DO UPDATE SET n = a.n + excluded.n, total = a.total + excluded.total
        RETURNING 1
    )
    SELECT (SELECT pg_catalog.count(*) FROM gone), (SELECT pg_catalog.count(*) FROM ins)
      INTO moved, top;
    UPDATE public.rates_fold_state s
       SET folded_version = GREATEST(s.folded_version,
                                     (SELECT d.version FROM public.rates_data_version d
                                       WHERE d.id = 1)),
           folded_at = pg_catalog.clock_timestamp(),
           folded_rows = s.folded_rows + moved
     WHERE s.id = 1;
    RETURN moved;
END
$$;

-- The background fold: one at a time (the others return -1 at once), under the writers'
-- shared lock, then a new data version when it moved anything (see the header).
CREATE OR REPLACE FUNCTION public.rates_fold() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    moved bigint;
BEGIN
    PERFORM 1 FROM public.rates_fold_state s WHERE s.id = 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    PERFORM 1 FROM public.rates_locks l WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR SHARE;
    moved := public.rates_fold_locked();
    IF moved > 0 THEN
        PERFORM public.rates_version_next();
    END IF;
    RETURN moved;
END
$$;

-- What the fold has not moved yet (rows of the tail) and when it last moved anything.
-- Runs as its caller.
CREATE OR REPLACE FUNCTION public.rates_fold_lag(OUT tail_rows bigint, OUT folded_version bigint,
                                                 OUT folded_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT pg_catalog.count(*) FROM public.rates_changes),
           s.folded_version, s.folded_at
      FROM public.rates_fold_state s WHERE s.id = 1
$$;

-- Node-map rewrites: as 0010's, but the change rows committed so far are folded under the
-- exclusive lock (with the old map) before the affected ports' prices are moved from the
-- old map to the new one; rows appended later are folded with the new map.
CREATE OR REPLACE FUNCTION public.rates_nodes_refresh() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed text[];
BEGIN
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
    PERFORM public.rates_fold_locked();
    PERFORM public.rates_daily_add_prices(changed, -1);
    DELETE FROM public.rates_nodes m WHERE m.code = ANY (changed);
    INSERT INTO public.rates_nodes (code, node)
    SELECT w.code, w.node FROM public.rates_nodes_wanted() w WHERE w.code = ANY (changed);
    PERFORM public.rates_daily_add_prices(changed, 1);
    RETURN NULL;
END
$$;

-- ratesd aggregates check: raw prices against fold + unfolded tail (no false differences
-- while the fold lags). Runs as its caller.
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
        SELECT h.o, h.d, h.day, pg_catalog.sum(h.n)::bigint AS n, pg_catalog.sum(h.s)::bigint AS s
          FROM (SELECT a.orig_node AS o, a.dest_node AS d, a.day, a.n, a.total AS s
                  FROM public.rates_daily a
                UNION ALL
                SELECT mo.node, md.node, c.day, c.n, c.total
                  FROM public.rates_changes c
                  JOIN public.rates_nodes mo ON mo.code = c.orig_code
                  JOIN public.rates_nodes md ON md.code = c.dest_code) h
         GROUP BY h.o, h.d, h.day
        HAVING pg_catalog.sum(h.n) <> 0 OR pg_catalog.sum(h.s) <> 0
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

-- ratesd aggregates rebuild: as 0010's, and the change log is emptied under the exclusive
-- lock (what it held is in the prices the rebuild reads).
CREATE OR REPLACE FUNCTION public.rates_daily_rebuild() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fixed bigint := 0;
    k bigint;
BEGIN
    PERFORM 1 FROM public.rates_locks l WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR UPDATE;
    PERFORM public.rates_fold_locked();
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
    IF fixed + k > 0 THEN
        PERFORM public.rates_version_next();
    END IF;
    RETURN fixed + k;
END
$$;

-- The port guard asks the aggregate; the committed tail is folded first (under the writers'
-- shared lock), so a port whose prices were all deleted but not yet folded is not refused.
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
    PERFORM 1 FROM public.rates_locks l WHERE l.name OPERATOR(pg_catalog.=) 'aggregate' FOR SHARE;
    PERFORM public.rates_fold_locked();
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

REVOKE ALL ON FUNCTION public.rates_version_next() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_changes_on_prices() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_fold_locked() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_fold() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_fold_lag() FROM PUBLIC;
REVOKE ALL ON public.rates_changes, public.rates_fold_state FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner') THEN
        RAISE WARNING 'role rates_owner is missing: the change-log functions keep their owner';
        RETURN;
    END IF;
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON public.rates_changes TO rates_owner;
    GRANT SELECT, UPDATE ON public.rates_fold_state TO rates_owner;
    GRANT EXECUTE ON FUNCTION public.rates_version_next() TO rates_owner;
    GRANT EXECUTE ON FUNCTION public.rates_fold_locked() TO rates_owner;
END
$$;

-- The service reads the tail and the fold's state, and runs the fold (a definer function);
-- it cannot write either table or take the fold's row lock itself.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
        GRANT SELECT ON public.rates_changes, public.rates_fold_state TO rates_app;
        GRANT EXECUTE ON FUNCTION public.rates_fold() TO rates_app;
        GRANT EXECUTE ON FUNCTION public.rates_fold_lag() TO rates_app;
    END IF;
END
$$;

-- Switch writers over: under SHARE on prices no writer is in flight, so the last upsert and
-- the first append do not overlap.
LOCK TABLE public.prices IN SHARE MODE;
DROP TRIGGER IF EXISTS prices_daily_insert ON public.prices;
DROP TRIGGER IF EXISTS prices_daily_update ON public.prices;
DROP TRIGGER IF EXISTS prices_daily_delete ON public.prices;
DROP TRIGGER IF EXISTS prices_daily_truncate ON public.prices;
DROP TRIGGER IF EXISTS zz_data_version ON public.prices;
DROP FUNCTION IF EXISTS public.rates_daily_on_prices();
CREATE TRIGGER zz_changes_insert AFTER INSERT ON public.prices
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_changes_on_prices();
CREATE TRIGGER zz_changes_update AFTER UPDATE ON public.prices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_changes_on_prices();
CREATE TRIGGER zz_changes_delete AFTER DELETE ON public.prices
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_changes_on_prices();
CREATE TRIGGER zz_changes_truncate AFTER TRUNCATE ON public.prices
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_changes_on_prices();

-- As 0013: every SECURITY DEFINER function in public goes to rates_owner, CREATE on public
-- granted to it for this transaction only when needed.
DO $$
DECLARE
    f record;
    owner_oid oid;
    granted boolean := false;
BEGIN
    SELECT oid INTO owner_oid FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner';
    IF owner_oid IS NULL THEN
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
