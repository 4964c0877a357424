-- Regions in /rates (issue 6): origin and destination may be region slugs of any depth.
--
-- region_ports(slug): every port whose region is slug or below it, at any depth. A recursive
-- CTE with UNION and a depth bound: PostgreSQL 13 has no CYCLE clause, and because depth is
-- part of each row UNION alone would not stop a cycle in regions.parent_slug (corrupt data);
-- the bound does (at most 64 rows per region on the cycle), so a request cannot hang. The
-- data is 3 levels deep. /ports?region= and rates_by_day() both use it.
--
-- rates_by_day(orig, dest, from, to): the days of /rates that have prices, one round trip:
--   * neither value is a region: the plain statement of before, one index range scan of
--     prices_route_day_idx (index-only), so port-to-port answers and costs do not change;
--   * otherwise each side is the value itself plus region_ports(value); "= ANY" on both
--     leading columns of the index is one range scan per (origin, destination) pair, and
--     count and avg run over every individual price of the day (not an average of averages).
-- The branch is chosen inside the database because the single statement that handles both
-- cases costs about twice the backend CPU for a port pair (about 90 against 45 us, mostly
-- executor start-up of the recursive plan); this function's port branch costs about 50 us.
--
-- Why not a closure table (ancestor, descendant) kept right by triggers on regions and ports:
-- regions hold a few dozen rows and change rarely, so expanding a slug costs microseconds;
-- a closure table would add triggers that must stay correct under concurrent writes and
-- under a cycle, and a backfill, to save nothing measurable on this path.
CREATE OR REPLACE FUNCTION public.region_ports(root text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
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
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.regions r WHERE r.slug = orig OR r.slug = dest) THEN
        RETURN QUERY
            SELECT pr.day - date_from, count(*), avg(pr.price)::float8
            FROM public.prices pr
            WHERE pr.orig_code = orig AND pr.dest_code = dest
              AND pr.day >= date_from AND pr.day <= date_to
            GROUP BY pr.day ORDER BY pr.day DESC;
    ELSE
        RETURN QUERY
            SELECT pr.day - date_from, count(*), avg(pr.price)::float8
            FROM public.prices pr
            WHERE pr.orig_code = ANY (ARRAY[orig] || ARRAY(SELECT public.region_ports(orig)))
              AND pr.dest_code = ANY (ARRAY[dest] || ARRAY(SELECT public.region_ports(dest)))
              AND pr.day >= date_from AND pr.day <= date_to
            GROUP BY pr.day ORDER BY pr.day DESC;
    END IF;
END
$$;
