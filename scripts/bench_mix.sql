-- The read mix of the benchmarks (scripts/bench.sh, scripts/bench-cache.sh): 20 busy routes, 20 sparse ones,
-- 19 without prices, and the README request; ranges of 1 to 31 days, all deterministic.
-- One line per request: orig dest date_from date_to (psql -At -F ' ').
WITH r AS (SELECT orig_code o, dest_code d, count(*) n FROM prices GROUP BY 1, 2),
busy AS (SELECT o, d FROM r ORDER BY n DESC, o, d LIMIT 20),
sparse AS (SELECT o, d FROM r ORDER BY n ASC, o, d LIMIT 20),
none AS (SELECT p1.code o, p2.code d FROM ports p1 JOIN ports p2 ON p1.code < p2.code
         WHERE NOT EXISTS (SELECT 1 FROM prices WHERE orig_code = p1.code AND dest_code = p2.code)
         ORDER BY p1.code, p2.code LIMIT 19),
allr AS (SELECT o, d, row_number() OVER () i FROM (SELECT * FROM busy UNION ALL SELECT * FROM sparse UNION ALL SELECT * FROM none) x)
SELECT o, d, (DATE '2021-01-01' + (i * 7 % 20)::int)::text,
       (DATE '2021-01-01' + (i * 7 % 20)::int + (i * 13 % 31)::int)::text FROM allr
UNION ALL SELECT 'CNGGZ', 'EETLL', '2021-01-01', '2021-01-31';
