-- rates:no-transaction
-- Batch ingestion (issue 3): the ledger of batches and the provenance of every price row.
-- Each statement runs on its own (the BRIN index is built CONCURRENTLY); every one is
-- idempotent, so an interrupted run can simply be repeated.
CREATE TABLE IF NOT EXISTS public.batches (
    id bigserial PRIMARY KEY,
    idempotency_key text,
    expired_idempotency_key text,
    token_name text NOT NULL,
    content_type text,
    body_sha256 text,
    rows bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('committed', 'rejected', 'aborted', 'retracted')),
    http_status integer,
    received_at timestamptz NOT NULL,
    committed_at timestamptz,
    retracted_at timestamptz,
    retracted_rows bigint,
    duration_ms double precision,
    error text,
    error_count bigint
);

-- At most one live batch per (token, key): the backstop behind the advisory lock that
-- answers a concurrent retry with 409. A key that expired is moved to
-- expired_idempotency_key when a new batch takes it over.
CREATE UNIQUE INDEX IF NOT EXISTS batches_token_key_uniq
    ON public.batches (token_name, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status IN ('committed', 'retracted');

-- Provenance: NULL for the rows of the original dump. Adding a nullable column without a
-- default only touches the catalog (no rewrite). No foreign key to batches: a per-row check
-- is what this design avoids; rows only ever get the id of their own batch's ledger record.
ALTER TABLE public.prices ADD COLUMN IF NOT EXISTS batch_id bigint;

-- A batch's rows are appended together, so a BRIN index finds them for a retraction at
-- almost no cost per inserted row (a btree would add one index insertion per row).
CREATE INDEX CONCURRENTLY IF NOT EXISTS prices_batch_id_brin
    ON public.prices USING brin (batch_id) WITH (autosummarize = on);
