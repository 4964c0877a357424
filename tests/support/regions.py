"""Expected /rates answers for region slugs, computed without the service's SQL (issue 6).

The subtrees below are written out by hand from the dump's regions table, so a test never
trusts the recursive expansion it is checking: a slug's ports are the ports whose region is in
its hand-written list, and a day's figures are one plain aggregate over those explicit ports.
"""
import json

# slug -> every region at or below it, by hand (the dump: china_main and northern_europe are
# the roots; the tree is 3 levels deep).
SUBTREES = {
    "china_main": ["china_main", "china_east_main", "china_north_main", "china_south_main"],
    "china_east_main": ["china_east_main"],
    "china_south_main": ["china_south_main"],
    "china_north_main": ["china_north_main"],
    "northern_europe": ["northern_europe", "baltic", "baltic_main", "finland_main", "poland_main",
                        "north_europe_main", "uk_main", "north_europe_sub", "uk_sub",
                        "russia_north_west", "scandinavia", "kattegat", "norway_north_west",
                        "norway_south_east", "norway_south_west", "stockholm_area"],
    "scandinavia": ["scandinavia", "kattegat", "norway_north_west", "norway_south_east",
                    "norway_south_west", "stockholm_area"],
    "baltic": ["baltic", "baltic_main", "finland_main", "poland_main"],
    "north_europe_main": ["north_europe_main", "uk_main"],
    "kattegat": ["kattegat"],
    "russia_north_west": ["russia_north_west"],
}


def sql_list(values):
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def ports_of(pg, value, db="rates"):
    """The explicit port list a code or slug stands for (a code stands for itself)."""
    if value not in SUBTREES:
        return [value]
    out = pg.psql(f"SELECT code FROM ports WHERE parent_slug IN ({sql_list(SUBTREES[value])}) "
                  "ORDER BY code", db=db)
    return out.split()


def expected_rates(pg, orig, dest, date_from, date_to, db="rates"):
    """{"rates": [...]} newest first: count and average over every price from any port of orig
    to any port of dest; price null under 3 prices; count and price null on empty days."""
    o, d = ports_of(pg, orig, db), ports_of(pg, dest, db)
    out = pg.psql(f"""
        SELECT json_agg(json_build_object('day', g.day::date, 'count', a.n, 'price', a.avg)
                        ORDER BY g.day DESC)
        FROM generate_series('{date_from}'::date, '{date_to}'::date, '1 day') AS g(day)
        LEFT JOIN (SELECT day, count(*) AS n, avg(price)::float8 AS avg FROM prices
                   WHERE orig_code IN ({sql_list(o)}) AND dest_code IN ({sql_list(d)})
                     AND day BETWEEN '{date_from}' AND '{date_to}'
                   GROUP BY day) a ON a.day = g.day""", db=db)
    rates = json.loads(out)
    for r in rates:
        if r["count"] is None or r["count"] < 3:
            r["price"] = None
    return {"rates": rates}
