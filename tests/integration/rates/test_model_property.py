"""The read model against an oracle, by random operations (issue 26): two instances with the
model (A, B) and one without (the database path, no cache) on one database. A seeded random
sequence of batches through A or B, retractions, plain SQL writes (INSERT, UPDATE of price
and key, DELETE) and moves of a port in the region tree; after each step random queries
(ports, regions at any depth, unknown codes, spans) must answer byte for byte as the oracle:
at once on the instance that wrote (read-your-writes), within a bound on the other. Bounded:
60 steps, 5 s per convergence wait."""
import random
import time

import pytest

from tests.support import ingest as iu

DB = "rates_model_prop"
PORTS = iu.PORTS[8:20]  # apart from test_model.py's ports
REGIONS = ["prop_r1", "prop_r2", "prop_r1a"]
DAYS = [f"2034-05-{d:02d}" for d in range(1, 21)]
STEPS = 60
CONVERGE_S = 5


@pytest.fixture(scope="module")
def trio(pg):
    url = iu.make_db(pg, DB)
    # Regions at depth 1 and 2 under ingest_test; the ports spread over them.
    pg.psql("INSERT INTO regions (slug, name, parent_slug) VALUES "
            "('prop_r1', 'Prop 1', 'ingest_test'), ('prop_r2', 'Prop 2', 'ingest_test'), "
            "('prop_r1a', 'Prop 1a', 'prop_r1') ON CONFLICT DO NOTHING", db=DB)
    for i, code in enumerate(PORTS):
        pg.psql(f"UPDATE ports SET parent_slug = '{REGIONS[i % 3]}' WHERE code = '{code}'", db=DB)
    a, b, oracle = iu.start_model_trio(url)
    yield a, b, oracle
    for s in (a, b, oracle):
        iu.stop_server(s)


def _queries(rng, n):
    names = PORTS + REGIONS + ["ingest_test", "NOPE9"]
    out = []
    for _ in range(n):
        i, j = sorted(rng.sample(range(len(DAYS)), 2))
        out.append(iu.rates_path(rng.choice(names), rng.choice(names), DAYS[i], DAYS[j]))
    out.append(iu.rates_path("ingest_test", "ingest_test", DAYS[0], DAYS[-1]))
    return out


def _get(s, path):
    st, _, body = s.request("GET", path)
    assert st == 200, (path, body)
    return body


def _differs(s, oracle, paths):
    """The first path whose answer on s differs from the oracle's, or None."""
    for p in paths:
        if _get(s, p) != _get(oracle, p):
            return p
    return None


def _converges(s, oracle, paths):
    deadline = time.monotonic() + CONVERGE_S
    while True:
        bad = _differs(s, oracle, paths)
        if bad is None:
            return None
        if time.monotonic() > deadline:
            return bad
        time.sleep(0.02)


def test_random_operations_keep_both_models_equal_to_the_database(pg, trio):
    a, b, oracle = trio
    rng = random.Random(26)
    batches = []  # (batch id, instance that wrote it)
    counts = {}
    for step in range(STEPS):
        op = rng.choices(["batch", "retract", "sql"], weights=[8, 3, 3])[0]
        if step % 12 == 11:
            op = "tree"  # every model reloads: a few of these, not many
        if op == "retract" and not batches:
            op = "batch"
        writer = None
        if op == "batch":
            writer = rng.choice([a, b])
            rows = [(rng.choice(PORTS), rng.choice(PORTS), rng.choice(DAYS), rng.randint(1, 2000))
                    for _ in range(rng.choice([rng.randint(1, 60), 4000]))]
            # (a large batch takes the follower's pass several ms: a writer that answered
            # from the model without waiting for it would show)
            st, _, doc = iu.post(writer, iu.body(rows))
            assert st == 201, doc
            batches.append((doc["batch_id"], writer))
        elif op == "retract":
            bid, writer = batches.pop(rng.randrange(len(batches)))
            st, _, body = writer.request("DELETE", f"/batches/{bid}", headers=iu.AUTH)
            assert st == 200, body
        elif op == "sql":
            kind = rng.choice(["insert", "update", "delete"])
            day = rng.choice(DAYS)
            if kind == "insert":
                values = ",".join(f"('{rng.choice(PORTS)}', '{rng.choice(PORTS)}', '{day}', "
                                  f"{rng.randint(1, 2000)})" for _ in range(rng.randint(1, 20)))
                pg.psql(f"INSERT INTO prices (orig_code, dest_code, day, price) VALUES {values}",
                        db=DB)
            elif kind == "update":
                pg.psql(f"UPDATE prices SET price = price + 7, dest_code = '{rng.choice(PORTS)}' "
                        f"WHERE day = '{day}' AND orig_code = '{rng.choice(PORTS)}'", db=DB)
            else:
                pg.psql(f"DELETE FROM prices WHERE day = '{day}' AND dest_code = "
                        f"'{rng.choice(PORTS)}'", db=DB)
        else:
            pg.psql(f"UPDATE ports SET parent_slug = '{rng.choice(REGIONS)}' "
                    f"WHERE code = '{rng.choice(PORTS)}'", db=DB)
        counts[op] = counts.get(op, 0) + 1
        paths = _queries(rng, 6)
        if writer is not None:  # read-your-writes: no wait on the instance that wrote
            bad = _differs(writer, oracle, paths)
            assert bad is None, f"step {step} ({op}): the writer answers older at {bad}"
        for s, name in ((a, "A"), (b, "B")):
            bad = _converges(s, oracle, paths)
            assert bad is None, f"step {step} ({op}): {name} differs after {CONVERGE_S} s at {bad}"
    assert a.metric('rates_model_state{state="current"}') == 1
    assert b.metric('rates_model_state{state="current"}') == 1
    assert a.metric('rates_model_reads_total{source="model"}') > 0
    names = PORTS + REGIONS + ["ingest_test"]
    every = [iu.rates_path(o, d, DAYS[0], DAYS[-1]) for o in names for d in names]
    for s, name in ((a, "A"), (b, "B")):
        bad = _converges(s, oracle, every)
        assert bad is None, f"{name} differs at the end at {bad}"
    print(f"\nmodel property: {STEPS} steps {counts}, {len(every)} routes compared at the end")
