-- The read model follows the change log (issue 26, docs/readmodel.md).
--
-- Every ratesd holds the daily aggregate in memory (src/model.c) and follows each commit's
-- rows of rates_changes (0016) in version order. The fold deletes the rows it moves, and it
-- may run (on any instance) before another instance has read them. So from here the rows the
-- fold moves are kept a while in rates_changes_folded (an append-only heap with a BRIN index
-- on version), and the models read both tables: a row is in exactly one of them in any
-- snapshot, since the fold moves it in one transaction.
--
-- rates_model_state tells a model when following is not enough:
--   epoch           bumped by everything that changes the aggregate without a change row:
--                   TRUNCATE of the log (TRUNCATE prices does it) and any change of the node
--                   map (rates_nodes: a port or region moved). A model at another epoch
--                   reloads from a snapshot.
--   pruned_version  rows up to this version may be gone from rates_changes_folded: a model
--                   older than that reloads from a snapshot.
--   keep_seconds    how long moved rows stay (60 to 120 s: pruned by version marks, one
--                   mark per keep_seconds, so that pruning is a range delete, never a scan
--                   by time). Operators may raise it with UPDATE as the owner.
-- Nothing here runs on the writers' commit path: the keep trigger runs in the fold's
-- transaction, the epoch trigger on TRUNCATE and node-map rewrites.
--
-- Lock order: as 0016. The keep trigger takes the state row after the fold's rows and before
-- the data-version row; the epoch trigger takes the state row, then the data-version row.

CREATE TABLE IF NOT EXISTS public.rates_changes_folded (
    version bigint NOT NULL,
    orig_code text COLLATE "C" NOT NULL,
    dest_code text COLLATE "C" NOT NULL,
    day date NOT NULL,
    n bigint NOT NULL,
    total bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS rates_changes_folded_version
    ON public.rates_changes_folded USING brin (version);

CREATE TABLE IF NOT EXISTS public.rates_model_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    pruned_version bigint NOT NULL,
    mark_version bigint NOT NULL,
    mark_at timestamptz NOT NULL,
    keep_seconds integer NOT NULL CHECK (keep_seconds > 0)
);
-- Nothing moved before this migration was kept: a model starts from a snapshot anyway.
INSERT INTO public.rates_model_state (id, epoch, pruned_version, mark_version, mark_at,
                                      keep_seconds)
SELECT 1, 1, d.version, d.version, pg_catalog.now(), 60
  FROM public.rates_data_version d WHERE d.id = 1
ON CONFLICT DO NOTHING;

-- The fold's DELETE from rates_changes: keep what it moved; prune what is past the mark.
CREATE OR REPLACE FUNCTION public.rates_changes_keep() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    top bigint;
BEGIN
    INSERT INTO public.rates_changes_folded (version, orig_code, dest_code, day, n, total)
    SELECT g.version, g.orig_code, g.dest_code, g.day, g.n, g.total FROM gone g;
    SELECT m.mark_version, m.mark_at, m.keep_seconds INTO s
      FROM public.rates_model_state m WHERE m.id OPERATOR(pg_catalog.=) 1 FOR UPDATE;
    IF NOT FOUND OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) s.mark_at
           OPERATOR(pg_catalog.<) pg_catalog.make_interval(secs => s.keep_seconds) THEN
        RETURN NULL;
    END IF;
    DELETE FROM public.rates_changes_folded f WHERE f.version OPERATOR(pg_catalog.<=) s.mark_version;
    SELECT pg_catalog.max(g.version) INTO top FROM gone g;
    UPDATE public.rates_model_state m
       SET pruned_version = GREATEST(m.pruned_version, m.mark_version),
           mark_version = GREATEST(m.mark_version, COALESCE(top, 0)),
           mark_at = pg_catalog.clock_timestamp()
     WHERE m.id OPERATOR(pg_catalog.=) 1;
    RETURN NULL;
END
$$;

-- TRUNCATE of the log, or any change of the node map: the models reload.
CREATE OR REPLACE FUNCTION public.rates_model_epoch_next() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE public.rates_model_state m SET epoch = m.epoch OPERATOR(pg_catalog.+) 1
     WHERE m.id OPERATOR(pg_catalog.=) 1;
    IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'rates_changes' THEN
        TRUNCATE public.rates_changes_folded;
    END IF;
    PERFORM public.rates_version_next();
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rates_changes_keep ON public.rates_changes;
CREATE TRIGGER rates_changes_keep AFTER DELETE ON public.rates_changes
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_changes_keep();
DROP TRIGGER IF EXISTS rates_changes_epoch ON public.rates_changes;
CREATE TRIGGER rates_changes_epoch AFTER TRUNCATE ON public.rates_changes
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_model_epoch_next();
DROP TRIGGER IF EXISTS rates_nodes_epoch ON public.rates_nodes;
CREATE TRIGGER rates_nodes_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.rates_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION public.rates_model_epoch_next();

REVOKE ALL ON FUNCTION public.rates_changes_keep() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.rates_model_epoch_next() FROM PUBLIC;
REVOKE ALL ON public.rates_changes_folded, public.rates_model_state FROM PUBLIC;

-- The owner's functions write both tables; the service only reads them (it cannot take the
-- state row's lock: no UPDATE).
DO $$
DECLARE
    owner_oid oid;
    granted boolean := false;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') THEN
        GRANT SELECT ON public.rates_changes_folded, public.rates_model_state TO rates_app;
    END IF;
    SELECT oid INTO owner_oid FROM pg_catalog.pg_roles WHERE rolname = 'rates_owner';
    IF owner_oid IS NULL THEN
        RAISE WARNING 'role rates_owner is missing: the model functions keep their owner';
        RETURN;
    END IF;
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON public.rates_changes_folded TO rates_owner;
    GRANT SELECT, UPDATE ON public.rates_model_state TO rates_owner;
    -- As 0013: the new definer functions go to rates_owner (CREATE on public for this
    -- transaction only when needed).
    IF NOT pg_catalog.has_schema_privilege(owner_oid, 'public', 'CREATE') THEN
        GRANT CREATE ON SCHEMA public TO rates_owner;
        granted := pg_catalog.has_schema_privilege(owner_oid, 'public', 'CREATE');
    END IF;
    BEGIN
        ALTER FUNCTION public.rates_changes_keep() OWNER TO rates_owner;
        ALTER FUNCTION public.rates_model_epoch_next() OWNER TO rates_owner;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot give the model functions to rates_owner; see docs/security.md';
    END;
    IF granted THEN
        REVOKE CREATE ON SCHEMA public FROM rates_owner;
    END IF;
END
$$;
