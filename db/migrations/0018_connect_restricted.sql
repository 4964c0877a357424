-- Only the service's roles may connect to the rates database (issue 27, docs/security.md).
--
-- PostgreSQL 13 (production) lets PUBLIC connect to every database. A role that can merely
-- log in could then take advisory locks in this database, and one of them still gates
-- something: 72730001, the lock `ratesd migrate` holds across its transactions (a session
-- lock by nature: row locks end with each migration's transaction). Everything else a login
-- role could reach is out of its reach already: batch slots and the aggregate's lock are rows
-- it may not lock (0014, 0015), the data version is read from the table (a NOTIFY payload is
-- never trusted), the fold's lock is a row it may not update (0016). From here CONNECT goes
-- to the roles that need it only: the migrating role (current_user), rates_app, and
-- rates_owner (NOLOGIN: for a later LOGIN by an operator). Superusers connect regardless.
-- A migrator that may not grant on the database (neither its owner nor a superuser) gets
-- PostgreSQL's warnings and changes nothing: docs/security.md says what to run by hand then.
DO $$
DECLARE
    db text := pg_catalog.current_database();
    r text;
BEGIN
    EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO %I', db, current_user);
    FOREACH r IN ARRAY ARRAY['rates_app', 'rates_owner'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO %I', db, r);
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', db);
END
$$;
