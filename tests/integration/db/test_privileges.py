"""Database privileges (issue 13): the service's role rates_app cannot escalate.

Everything is derived from the catalog of a migrated database, so tables, functions and
triggers that later migrations add are covered without editing this file:
  * the shadowing attack of the issue, for every function name that any function the
    migrations created calls (parsed from pg_proc.prosrc): rates_app creates a same-named
    function (or aggregate) in public and in pg_temp, with each built-in signature made
    concrete (anyarray -> text[], ...), that warns "rates-shadow-hit" and tries
    ALTER ROLE rates_app SUPERUSER; then the triggers and functions run, as rates_app and as
    a superuser whose search_path puts public first;
  * every SECURITY DEFINER function has exactly the pinned search_path and owner rates_owner;
  * rates_app owns nothing and cannot ALTER, DISABLE TRIGGER, TRUNCATE, DROP, SET
    session_replication_role, COPY ... PROGRAM, CREATE in public...;
  * a catalog snapshot (roles, tables, columns, triggers, functions, ACLs) is unchanged.
PostgreSQL 15 does not grant CREATE on public to PUBLIC; the tests grant it first, as 13 does,
and the same tests run against 13 itself (tests/stages/pg13.sh). Evidence that they can fail:
test_attack_succeeds_without_0007 applies 0001-0006 only and shows the escalation working.
Each module test gets its own cluster: roles are cluster-wide and one test makes rates_app a
superuser on purpose.
"""
import glob
import os
import re
import subprocess

import psycopg2
import pytest

from tests import support

MARK = "rates-shadow-hit"
PINNED = ["search_path=pg_catalog, pg_temp"]
MIGRATIONS = sorted(glob.glob(os.path.join(support.ROOT, "db", "migrations", "*.sql")))

# Polymorphic argument types made concrete for a shadow; others are kept as they are.
CONCRETE = {"anyarray": "text[]", "anycompatiblearray": "text[]", "anyelement": "text",
            "anycompatible": "text", "anynonarray": "text", '"any"': "text", "any": "text"}
UNUSABLE = {"internal", "anyenum", "anyrange", "anycompatiblerange", "anymultirange",
            "anycompatiblemultirange", "cstring", "trigger", "event_trigger"}


def connect(pg, db, user="postgres"):
    # Every statement is bounded in time (a hung lock would otherwise hang the test).
    c = psycopg2.connect(host="127.0.0.1", port=pg.port, dbname=db, user=user,
                         connect_timeout=10, options="-c statement_timeout=30000")
    c.autocommit = True
    return c


def q(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def attempt(conn, sql):
    """Runs sql; returns None when it succeeded, else the SQLSTATE of the refusal."""
    try:
        q(conn, sql)
        return None
    except psycopg2.Error as e:
        return e.pgcode or "?"


def seed(conn):
    q(conn, "INSERT INTO public.regions VALUES ('top', 'Top', NULL), ('sub', 'Sub', 'top')")
    q(conn, "INSERT INTO public.ports VALUES ('AAAAA', 'A', 'sub'), ('BBBBB', 'B', 'top'),"
            " ('CCCCC', 'C', 'top'), ('DDDDD', 'D', 'top')")
    q(conn, "GRANT USAGE ON SCHEMA public TO rates_app")


def new_db(pg, name):
    pg.psql(f"CREATE DATABASE {name}", db="postgres")


def migrate(pg, db):
    r = subprocess.run([support.RATES_BIN, "migrate"],
                       env=support.server_env({"RATES_DATABASE_URL": pg.url(db)}),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def grant_public_create(conn):
    """PostgreSQL 13's default, reproduced on 15 (a no-op on 13 before 0007 revokes it)."""
    q(conn, "GRANT CREATE ON SCHEMA public TO PUBLIC")


# ------------------------------------------------------------------ derived from the catalog
def our_functions(conn):
    """(signature, prosecdef, prosrc) of every function outside the system schemas."""
    return q(conn, """
        SELECT p.oid::regprocedure::text, p.prosecdef, p.prosrc FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
          AND p.proowner <> 'rates_app'::regrole ORDER BY 1""")


def called_names(conn):
    """Every identifier followed by "(" in any function body that names an existing
    function (keywords like EXISTS or VALUES name none), qualified calls included."""
    names = set()
    for _, _, src in our_functions(conn):
        for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_$]*)\s*\(", src or ""):
            names.add(m.group(1).lower())
    known = {r[0] for r in q(conn, "SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY(%s)",
                             (sorted(names),))}
    return sorted(known)


def shadow_signatures(conn, name):
    """(kind, argtypes, rettype, retset) for every existing function of that name, with
    polymorphic types made concrete; duplicates and unusable ones dropped."""
    rows = q(conn, """
        SELECT p.prokind, p.provariadic <> 0,
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t),
               format_type(p.prorettype, NULL), p.proretset
        FROM pg_proc p WHERE p.proname = %s""", (name,))
    out = set()
    for kind, variadic, args, ret, retset in rows:
        if kind not in ("f", "a") or variadic:
            continue
        args = [CONCRETE.get(a, a) for a in args]
        ret = CONCRETE.get(ret, ret)
        if set(args) & UNUSABLE or ret in UNUSABLE or ret == "record":
            continue
        if kind == "a" and len(args) != 1:
            continue
        out.add((kind, tuple(args), ret, retset))
    return sorted(out)


def shadow_body(label):
    lab = label.replace("'", "''")
    return (f"BEGIN RAISE WARNING '{MARK} {lab} as %', current_user; "
            "BEGIN EXECUTE 'ALTER ROLE rates_app SUPERUSER'; "
            "EXCEPTION WHEN OTHERS THEN NULL; END; ")


def all_signatures(conn, names):
    """{name: shadow_signatures}, read before any shadow exists (by the superuser)."""
    return {name: shadow_signatures(conn, name) for name in names}


def create_shadows(conn, schema, sigs):
    """Creates every shadow of sigs it can in schema as the connected role; returns their
    labels and the statements that drop them again."""
    made, drops = [], []
    n = 0
    for name, variants in sorted(sigs.items()):
        for kind, args, ret, retset in variants:
            label = f"{schema}.{name}({', '.join(args)})"
            if kind == "a":
                n += 1
                helper = f"{schema}.rates_shadow_sfunc{n}"
                if attempt(conn, f"CREATE FUNCTION {helper}(s text[], v {args[0]}) RETURNS "
                                 f"text[] LANGUAGE plpgsql AS $f${shadow_body(label)} "
                                 "RETURN NULL; END$f$") is not None:
                    continue
                drops.append(f"DROP FUNCTION IF EXISTS {helper}(text[], {args[0]}) CASCADE")
                # Returns text[] whatever the built-in returns: a hit is seen by its warning.
                sql = (f"CREATE AGGREGATE {schema}.{name}({args[0]}) "
                       f"(SFUNC = {helper}, STYPE = text[])")
                drop = f"DROP AGGREGATE IF EXISTS {schema}.{name}({args[0]})"
            else:
                params = ", ".join(f"a{i} {t}" for i, t in enumerate(args))
                rets = f"SETOF {ret}" if retset else ret
                tail = "RETURN; END" if retset else "RETURN NULL; END"
                sql = (f"CREATE FUNCTION {schema}.{name}({params}) RETURNS {rets} "
                       f"LANGUAGE plpgsql AS $f${shadow_body(label)}{tail}$f$")
                drop = f"DROP FUNCTION IF EXISTS {schema}.{name}({', '.join(args)})"
            if attempt(conn, sql) is None:
                made.append(label)
                drops.append(drop)
    return made, drops


def snapshot(conn):
    """Everything an escalation would change, as comparable rows (objects of rates_app's
    own, the shadows, are left out: test_app_owns_nothing covers them). ACLs are compared
    in effect: a refused GRANT may spell out a default (NULL) ACL without changing it."""
    s = {}
    s["roles"] = q(conn, """SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb,
        rolcanlogin, rolreplication, rolbypassrls FROM pg_roles
        WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1""")
    s["members"] = q(conn, """SELECT roleid::regrole::text, member::regrole::text
        FROM pg_auth_members ORDER BY 1, 2""")
    s["classes"] = q(conn, """SELECT c.relname, c.relkind, c.relowner::regrole::text,
        coalesce(c.relacl, acldefault('r', c.relowner))::text, c.relrowsecurity, c.relforcerowsecurity, c.relhastriggers
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1""")
    s["columns"] = q(conn, """SELECT a.attrelid::regclass::text, a.attname, a.attacl::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 ORDER BY 1, 2""")
    s["triggers"] = q(conn, """SELECT tgrelid::regclass::text, tgname, tgenabled,
        tgfoid::regprocedure::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""")
    s["functions"] = q(conn, """SELECT p.oid::regprocedure::text, p.proowner::regrole::text,
        p.prosecdef, p.proconfig, md5(p.prosrc),
        coalesce(p.proacl, acldefault('f', p.proowner))::text FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> 'rates_app'::regrole
        ORDER BY 1""")
    s["schemas"] = q(conn, "SELECT nspname, nspowner::regrole::text, "
                           "coalesce(nspacl, acldefault('n', nspowner))::text "
                           "FROM pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_' ORDER BY 1")
    s["database"] = q(conn, "SELECT datname, datdba::regrole::text, "
                            "coalesce(datacl, acldefault('d', datdba))::text "
                            "FROM pg_database WHERE datname = current_database()")
    s["settings"] = q(conn, "SELECT setdatabase, setrole, setconfig FROM pg_db_role_setting "
                            "ORDER BY 1, 2")
    return s


def exercise(app, su):
    """Runs every trigger and function the migrations made: as rates_app (its rights) and
    as a superuser with public first on its search_path. Returns the warnings seen."""
    q(app, "INSERT INTO public.prices (orig_code, dest_code, day, price) VALUES "
           "('AAAAA', 'BBBBB', '2030-01-01', 100), ('BBBBB', 'AAAAA', '2030-01-01', 200)")
    assert attempt(app, "INSERT INTO public.prices (orig_code, dest_code, day, price) "
                        "VALUES ('AAAAA', 'ZZZZZ', '2030-01-01', 1)") == "23503"
    q(app, "DELETE FROM public.prices WHERE price = 200")
    q(app, "SELECT * FROM public.rates_by_day('AAAAA', 'BBBBB', '2030-01-01', '2030-01-02')")
    q(app, "SELECT * FROM public.rates_by_day('top', 'top', '2030-01-01', '2030-01-02')")
    q(su, "SET search_path = public, pg_catalog")
    q(su, "INSERT INTO prices (orig_code, dest_code, day, price) "
          "VALUES ('CCCCC', 'AAAAA', '2030-01-02', 5)")
    q(su, "UPDATE prices SET price = price + 1 WHERE orig_code = 'CCCCC'")
    q(su, "UPDATE ports SET name = 'D2' WHERE code = 'DDDDD'")
    q(su, "UPDATE ports SET code = 'EEEEE' WHERE code = 'DDDDD'")
    q(su, "DELETE FROM ports WHERE code = 'EEEEE'")
    assert attempt(su, "DELETE FROM ports WHERE code = 'AAAAA'") == "23503"
    assert attempt(su, "TRUNCATE ports CASCADE") is not None
    q(su, "SELECT * FROM rates_by_day('sub', 'top', '2030-01-01', '2030-01-02')")
    q(su, "SELECT * FROM region_ports('top')")
    q(su, "INSERT INTO ports VALUES ('DDDDD', 'D', 'top')")
    q(su, "RESET search_path")
    return [n for n in app.notices + su.notices if MARK in n]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def cluster():
    c = support.PgCluster()
    yield c
    c.destroy()


@pytest.fixture(scope="module")
def db(cluster):
    new_db(cluster, "priv")
    su = connect(cluster, "priv")
    grant_public_create(su)   # as 13 has it: 0007 must revoke it
    su.close()
    migrate(cluster, "priv")
    su = connect(cluster, "priv")
    seed(su)
    yield cluster, su
    su.close()


# --------------------------------------------------------------------------------- tests
def test_definer_functions_are_pinned_and_owned_by_rates_owner(db):
    pg, su = db
    rows = q(su, """SELECT p.oid::regprocedure::text, p.proowner::regrole::text, p.proconfig
        FROM pg_proc p WHERE p.prosecdef ORDER BY 1""")
    assert rows, "no SECURITY DEFINER function found: the migrations did not run?"
    for sig, owner, config in rows:
        assert owner == "rates_owner", (sig, owner)
        assert config == PINNED, (sig, config)
    # The functions that run as their caller are pinned too (0006's, and later ones).
    for sig, secdef, _ in our_functions(su):
        assert q(su, "SELECT proconfig FROM pg_proc WHERE oid = %s::regprocedure",
                 (sig,))[0][0] == PINNED, sig
    owner = q(su, """SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication,
        rolbypassrls FROM pg_roles WHERE rolname = 'rates_owner'""")
    assert owner == [(False, False, False, False, False, False)]
    # rates_owner owns functions only, creates nothing, belongs to no role.
    assert q(su, "SELECT relname FROM pg_class WHERE relowner = 'rates_owner'::regrole") == []
    assert q(su, "SELECT has_schema_privilege('rates_owner', 'public', 'CREATE'), "
                 "has_database_privilege('rates_owner', current_database(), 'CREATE')") == \
        [(False, False)]
    assert q(su, "SELECT roleid::regrole::text FROM pg_auth_members "
                 "WHERE member = 'rates_owner'::regrole") == []


def test_app_owns_nothing_and_creates_only_temporary_tables(db):
    pg, su = db
    for cat, col in (("pg_class", "relowner"), ("pg_proc", "proowner"),
                     ("pg_type", "typowner"), ("pg_namespace", "nspowner"),
                     ("pg_database", "datdba"), ("pg_operator", "oprowner")):
        assert q(su, f"SELECT count(*) FROM {cat} WHERE {col} = 'rates_app'::regrole") == [(0,)], cat
    assert q(su, """SELECT has_schema_privilege('rates_app', 'public', 'CREATE'),
        has_database_privilege('rates_app', current_database(), 'CREATE'),
        has_database_privilege('rates_app', current_database(), 'TEMPORARY'),
        has_database_privilege('rates_app', current_database(), 'CONNECT'),
        has_schema_privilege('rates_app', 'public', 'USAGE')""") == [(False, False, True, True, True)]
    assert q(su, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                 "FROM pg_roles WHERE rolname = 'rates_app'") == [(False,) * 5]


def test_every_escalation_is_refused(db):
    pg, su = db
    before = snapshot(su)
    app = connect(pg, "priv", "rates_app")
    tables = [r[0] for r in q(su, "SELECT c.oid::regclass::text FROM pg_class c WHERE "
                                  "c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')")]
    triggers = q(su, "SELECT tgrelid::regclass::text, quote_ident(tgname) FROM pg_trigger "
                     "WHERE NOT tgisinternal")
    funcs = [r[0] for r in our_functions(su)]
    assert len(tables) >= 4 and triggers and funcs
    stmts = []
    for t in tables:
        stmts += [f"ALTER TABLE {t} ADD COLUMN rates_x int", f"ALTER TABLE {t} DISABLE TRIGGER ALL",
                  f"ALTER TABLE {t} DISABLE TRIGGER USER", f"ALTER TABLE {t} OWNER TO rates_app",
                  f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY", f"TRUNCATE {t}",
                  f"DROP TABLE {t}", f"CREATE INDEX ON {t} ((1))", f"ALTER TABLE {t} RENAME TO rates_x",
                  f"CREATE TRIGGER rates_x BEFORE INSERT ON {t} FOR EACH ROW "
                  "EXECUTE FUNCTION public.prices_check_ports()",
                  f"CREATE RULE rates_x AS ON INSERT TO {t} DO INSTEAD NOTHING",
                  f"COPY {t} TO PROGRAM 'true'", f"COPY {t} FROM PROGRAM 'true'",
                  f"COPY {t} TO '/tmp/rates-priv-copy'"]
    for t, name in triggers:
        stmts += [f"ALTER TABLE {t} DISABLE TRIGGER {name}", f"DROP TRIGGER {name} ON {t}",
                  f"ALTER TRIGGER {name} ON {t} RENAME TO rates_x"]
    for f in funcs:
        stmts += [f"ALTER FUNCTION {f} SECURITY INVOKER", f"ALTER FUNCTION {f} RESET ALL",
                  f"ALTER FUNCTION {f} SET search_path = public",
                  f"ALTER FUNCTION {f} OWNER TO rates_app", f"DROP FUNCTION {f}"]
    stmts += ["SET session_replication_role = replica",
              "SET SESSION AUTHORIZATION postgres", "SET ROLE rates_owner",
              "SET ROLE postgres", "ALTER ROLE rates_app SUPERUSER",
              "ALTER ROLE rates_app BYPASSRLS", "ALTER ROLE rates_owner LOGIN",
              "GRANT rates_owner TO rates_app", "CREATE ROLE rates_x SUPERUSER",
              "COPY (SELECT 1) TO PROGRAM 'touch /tmp/rates-priv-pwned'",
              "CREATE TABLE public.rates_x (x int)", "CREATE FUNCTION public.rates_x() "
              "RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE SCHEMA rates_x",
              "CREATE VIEW public.rates_x AS SELECT 1", "CREATE EXTENSION plperlu",
              "ALTER SCHEMA public OWNER TO rates_app", "ALTER SYSTEM SET fsync = off",
              "LOAD '/tmp/rates-priv.so'",
              "SELECT pg_read_file('/etc/passwd')", "SELECT lo_import('/etc/passwd')",
              "ALTER DATABASE priv SET search_path = public",
              "CREATE OR REPLACE FUNCTION public.prices_check_ports() RETURNS trigger "
              "LANGUAGE plpgsql AS $f$BEGIN RETURN NULL; END$f$"]
    accepted = [s for s in stmts if attempt(app, s) is None]
    assert accepted == [], f"rates_app could run: {accepted}"
    # Its one creation right works (the ingest staging table).
    assert attempt(app, "CREATE TEMP TABLE rates_stage (x int)") is None
    # GRANT/REVOKE without the right only warn ("no privileges were granted"): the snapshot
    # says whether they did anything.
    for t in tables:
        attempt(app, f"GRANT ALL ON {t} TO rates_app")
        attempt(app, f"REVOKE ALL ON {t} FROM rates_owner")
    for f in funcs:
        attempt(app, f"GRANT ALL ON FUNCTION {f} TO PUBLIC")
    attempt(app, "GRANT CREATE ON SCHEMA public TO rates_app")
    app.close()
    assert snapshot(su) == before
    assert not os.path.exists("/tmp/rates-priv-pwned")


def test_shadowing_attack_hits_nothing(db):
    """The issue's attack, for every called name, in public (with CREATE granted back to
    PUBLIC, as on 13 when the revoke was not possible) and in pg_temp."""
    pg, su = db
    names = called_names(su)
    print("names called in function bodies:", names)
    assert "unnest" in names and "array_agg" in names   # the parser sees the calls
    grant_public_create(su)
    app = connect(pg, "priv", "rates_app")
    drops = []
    try:
        before = snapshot(su)
        sigs = all_signatures(su, names)
        made, d1 = create_shadows(app, "public", sigs)
        drops += d1
        made_tmp, d2 = create_shadows(app, "pg_temp", sigs)
        drops += d2
        print(f"{len(made)} public and {len(made_tmp)} pg_temp shadows, e.g. {made[:6]}")
        assert "public.unnest(text[])" in made and "public.array_agg(text)" in made
        assert len(made_tmp) >= len(made)
        # Temporary tables named like every table and transition table the bodies use.
        rels = [r[0] for r in q(su, "SELECT relname FROM pg_class WHERE relnamespace = "
                                    "'public'::regnamespace AND relkind IN ('r', 'p')")]
        rels += [r[0] for r in q(su, "SELECT tgnewtable FROM pg_trigger WHERE tgnewtable "
                                     "IS NOT NULL UNION SELECT tgoldtable FROM pg_trigger "
                                     "WHERE tgoldtable IS NOT NULL")]
        for rel in sorted(set(rels)):
            q(app, f'CREATE TEMP TABLE "{rel}" (orig_code text, dest_code text, day date, '
                   'price int, code text, slug text, parent_slug text)')
        su2 = connect(pg, "priv")
        hits = exercise(app, su2)
        su2.close()
        assert hits == [], hits
        after = snapshot(su)
        assert q(su, "SELECT rolsuper FROM pg_roles WHERE rolname = 'rates_app'") == [(False,)]
        assert after == before
    finally:
        for s in reversed(drops):
            attempt(app, s)
        app.close()
        q(su, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    assert q(su, "SELECT count(*) FROM pg_proc WHERE proowner = 'rates_app'::regrole") == [(0,)]


def test_a_login_role_cannot_connect_or_squat_the_migration_lock(db):
    """0018: a role that may only log in (PostgreSQL 13's defaults let PUBLIC connect) cannot
    connect to the rates database, so it cannot hold 72730001, the advisory lock `ratesd
    migrate` keeps across its transactions. Granted CONNECT (an operator's choice), it could:
    the migration then waits and fails, changing nothing; the service's roles still connect."""
    cluster, su = db
    q(su, "DROP ROLE IF EXISTS squat_mig; CREATE ROLE squat_mig LOGIN")
    assert q(su, "SELECT has_database_privilege('public', 'priv', 'CONNECT'), "
                 "has_database_privilege('rates_app', 'priv', 'CONNECT')") == [(False, True)]
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(cluster, "priv", user="squat_mig")
    assert "permission denied for database" in str(e.value)
    # The same role may still connect where PUBLIC may (the cluster's other databases).
    connect(cluster, "postgres", user="squat_mig").close()
    app = connect(cluster, "priv", user="rates_app")
    assert q(app, "SELECT current_user") == [("rates_app",)]
    app.close()
    q(su, "DROP ROLE squat_mig")


def test_migration_rerun_revokes_create_again(db):
    """0007 run again (as after an interrupted run, or by a DBA) on a database where PUBLIC
    got CREATE back: it revokes it again and changes no role, table, trigger, owner or ACL.
    (Function bodies are left out: a later migration may have replaced one 0007 made, and
    an old migration replayed out of order puts its own back.)"""
    pg, su = db
    grant_public_create(su)
    before = snapshot(su)
    path = [m for m in MIGRATIONS if os.path.basename(m).startswith("0007_")][0]
    r = subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", str(pg.port), "-U", "postgres", "-d", "priv", "-f", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    assert q(su, "SELECT has_schema_privilege('rates_app', 'public', 'CREATE')") == [(False,)]
    after = snapshot(su)

    def comparable(snap):
        out = {k: v for k, v in snap.items() if k != "schemas"}
        out["functions"] = [f[:4] + f[5:] for f in snap["functions"]]
        return out
    assert comparable(after) == comparable(before)


def test_attack_succeeds_without_0007():
    """Evidence the attack test can fail: on 0001-0006 alone rates_app becomes superuser."""
    pg = support.PgCluster()
    try:
        new_db(pg, "old")
        su = connect(pg, "old")
        q(su, "CREATE TABLE public.schema_migrations (version integer PRIMARY KEY, "
              "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for path in MIGRATIONS:
            if int(os.path.basename(path).split("_")[0]) > 6:
                continue
            r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                "-p", str(pg.port), "-U", "postgres", "-d", "old", "-f", path],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        grant_public_create(su)
        seed(su)
        app = connect(pg, "old", "rates_app")
        made, _ = create_shadows(app, "public", all_signatures(su, called_names(su)))
        assert "public.unnest(text[])" in made
        q(app, "INSERT INTO public.prices (orig_code, dest_code, day, price) "
               "VALUES ('AAAAA', 'BBBBB', '2030-01-01', 100)")
        hits = [n for n in app.notices if MARK in n]
        app.close()
        assert hits, "the shadow did not run: this test cannot show anything"
        assert q(su, "SELECT rolsuper FROM pg_roles WHERE rolname = 'rates_app'") == [(True,)]
        su.close()
    finally:
        pg.destroy()


def test_non_superuser_migrator_gives_every_definer_function_away():
    """A migrator that is not a superuser, set up as docs/security.md says (CREATEROLE, owner
    of the database and of schema public, member of rates_owner; what the compose ha profile's
    post_bootstrap does): after `ratesd migrate` every SECURITY DEFINER function belongs to
    rates_owner (0013 sweeps those 0010 and 0012 could not give away after 0007's revoke),
    and neither PUBLIC nor rates_owner keeps CREATE on public."""
    pg = support.PgCluster()
    try:
        pg.psql("CREATE ROLE mig LOGIN CREATEROLE", db="postgres")
        pg.psql("CREATE ROLE rates_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                "NOREPLICATION NOBYPASSRLS NOINHERIT", db="postgres")
        pg.psql("GRANT rates_owner TO mig", db="postgres")
        pg.psql("CREATE DATABASE nsu OWNER mig", db="postgres")
        su = connect(pg, "nsu")
        q(su, "ALTER SCHEMA public OWNER TO mig")
        grant_public_create(su)  # as 13 has it
        r = subprocess.run([support.RATES_BIN, "migrate"],
                           env=support.server_env({"RATES_DATABASE_URL": pg.url("nsu", "mig")}),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rows = q(su, "SELECT p.oid::regprocedure::text, p.proowner::regrole::text "
                     "FROM pg_proc p WHERE p.prosecdef ORDER BY 1")
        names = {x[0] for x in rows}
        assert {"prices_check_ports()", "rates_daily_rebuild()",
                "rates_data_version_bump()"} <= names, rows   # 0007's, 0010's, 0012's
        assert [x for x in rows if x[1] != "rates_owner"] == []
        assert q(su, "SELECT has_schema_privilege('rates_owner', 'public', 'CREATE'), "
                     "has_schema_privilege('rates_app', 'public', 'CREATE'), "
                     "has_schema_privilege('public', 'public', 'CREATE')") == [(False, False, False)]
        assert q(su, "SELECT rolsuper FROM pg_roles WHERE rolname = 'mig'") == [(False,)]
        assert "0013_definer_owner_sweep" in r.stdout + r.stderr
        # The unit runs `ratesd migrate` as the service's role before serving: on an
        # up-to-date schema that is a no-op that succeeds; with a migration pending it fails,
        # says which, and changes nothing.
        app_env = support.server_env({"RATES_DATABASE_URL": pg.url("nsu", "rates_app")})
        r = subprocess.run([support.RATES_BIN, "migrate"], env=app_env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        q(su, "DELETE FROM public.schema_migrations WHERE version = 13")
        before = q(su, "SELECT p.oid::regprocedure::text, p.proowner::regrole::text "
                       "FROM pg_proc p ORDER BY 1")
        r = subprocess.run([support.RATES_BIN, "migrate"], env=app_env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0, r.stdout + r.stderr
        assert "migration 0013_definer_owner_sweep failed" in r.stdout + r.stderr, r.stdout
        assert q(su, "SELECT p.oid::regprocedure::text, p.proowner::regrole::text "
                     "FROM pg_proc p ORDER BY 1") == before
        assert q(su, "SELECT count(*) FROM public.schema_migrations WHERE version = 13") == [(0,)]
        su.close()
    finally:
        pg.destroy()
