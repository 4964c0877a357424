-- rates:no-transaction
-- The index that serves /rates: one range scan per request instead of a scan of the table.
-- INCLUDE (price) lets PostgreSQL answer from the index alone (index-only scan).
-- Built CONCURRENTLY so that readers and writers keep going while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS prices_route_day_idx
    ON public.prices (orig_code, dest_code, day) INCLUDE (price);
