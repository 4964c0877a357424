-- rates:no-transaction
-- Contract (issue 15): /rates reads public.rates_daily (0010) and the port guard asks it
-- too, so nothing reads prices by route any more. The route index cost one B-tree insertion
-- per price and bounded large batches (docs/aggregates.md has the figures); prices keep the
-- BRIN index by batch (retraction, provenance). DROP INDEX CONCURRENTLY: readers and
-- writers keep going while it goes.
DROP INDEX CONCURRENTLY IF EXISTS public.prices_route_day_idx;
