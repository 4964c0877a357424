-- Referential integrity of prices -> ports, checked per statement instead of per row.
--
-- The dump's two foreign keys run one lookup and one row lock per inserted row and per key
-- (two per price): at 1,000,000 rows that is the bottleneck of ingestion (about 50,000 rows/s
-- against about 1,450,000 without them). These triggers keep the same guarantee for every
-- writer, set-wise:
--   * after each INSERT or UPDATE statement on prices, the distinct codes of the new rows
--     (a transition table) are locked FOR KEY SHARE in ports (as the foreign key does, so a
--     concurrent delete waits, or we wait for it and then see the port gone), and the
--     statement fails with foreign_key_violation if any of them is not a port;
--   * a port whose code prices reference cannot be deleted, renamed or truncated away.
-- The guard on ports runs at READ COMMITTED only: under a snapshot (REPEATABLE READ,
-- SERIALIZABLE) it could miss prices committed after the snapshot, so it refuses.
-- SECURITY DEFINER: FOR KEY SHARE needs UPDATE rights on ports, which the service's role
-- does not have; the functions take no input but the rows of the statement.
CREATE OR REPLACE FUNCTION public.prices_check_ports() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    codes text[];
    missing text;
BEGIN
    SELECT array_agg(u.code) INTO codes
      FROM (SELECT n.orig_code AS code FROM new_rows n
            UNION SELECT n.dest_code FROM new_rows n) u;
    IF codes IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.ports p WHERE p.code = ANY (codes) ORDER BY p.code FOR KEY SHARE OF p;
    SELECT c INTO missing FROM unnest(codes) c
     WHERE NOT EXISTS (SELECT 1 FROM public.ports p WHERE p.code = c) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "prices" names unknown port "%"', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'prices';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.ports_guard_referenced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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
    IF current_setting('transaction_isolation') <> 'read committed' THEN
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

REVOKE ALL ON FUNCTION public.prices_check_ports() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.ports_guard_referenced() FROM PUBLIC;

DROP TRIGGER IF EXISTS prices_ports_insert ON public.prices;
CREATE TRIGGER prices_ports_insert AFTER INSERT ON public.prices
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.prices_check_ports();
DROP TRIGGER IF EXISTS prices_ports_update ON public.prices;
CREATE TRIGGER prices_ports_update AFTER UPDATE ON public.prices
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.prices_check_ports();
DROP TRIGGER IF EXISTS ports_guard_referenced ON public.ports;
CREATE TRIGGER ports_guard_referenced BEFORE DELETE OR UPDATE ON public.ports
    FOR EACH ROW EXECUTE FUNCTION public.ports_guard_referenced();
DROP TRIGGER IF EXISTS ports_guard_truncate ON public.ports;
CREATE TRIGGER ports_guard_truncate BEFORE TRUNCATE ON public.ports
    FOR EACH STATEMENT EXECUTE FUNCTION public.ports_guard_referenced();

-- The triggers now hold the guarantee; the row-level foreign keys go in the same transaction.
ALTER TABLE public.prices DROP CONSTRAINT IF EXISTS prices_orig_code_fkey;
ALTER TABLE public.prices DROP CONSTRAINT IF EXISTS prices_dest_code_fkey;
