-- The schema of the original dump, for an empty database. On a database loaded from the
-- dump every statement here is a no-op.
CREATE TABLE IF NOT EXISTS public.regions (
    slug text NOT NULL,
    name text NOT NULL,
    parent_slug text,
    CONSTRAINT regions_pkey PRIMARY KEY (slug),
    CONSTRAINT regions_parent_slug_fkey FOREIGN KEY (parent_slug) REFERENCES public.regions (slug)
);

CREATE TABLE IF NOT EXISTS public.ports (
    code text NOT NULL,
    name text NOT NULL,
    parent_slug text NOT NULL,
    CONSTRAINT ports_pkey PRIMARY KEY (code),
    CONSTRAINT ports_parent_slug_fkey FOREIGN KEY (parent_slug) REFERENCES public.regions (slug)
);

CREATE TABLE IF NOT EXISTS public.prices (
    orig_code text NOT NULL,
    dest_code text NOT NULL,
    day date NOT NULL,
    price integer NOT NULL,
    CONSTRAINT prices_orig_code_fkey FOREIGN KEY (orig_code) REFERENCES public.ports (code),
    CONSTRAINT prices_dest_code_fkey FOREIGN KEY (dest_code) REFERENCES public.ports (code)
);
