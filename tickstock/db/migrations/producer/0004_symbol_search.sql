-- Substring search for `GET /api/symbols?q=` (`symbol ILIKE '%q%' OR name ILIKE '%q%'`) via
-- pg_trgm when the server ships it and this role may create it. The bundled local-stack server
-- (pgserver) has no pg_trgm: there the prefix indexes from 0001 serve, and a substring search
-- scans a table of a few thousand rows, which is fine.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN;
    END;
    CREATE INDEX IF NOT EXISTS symbols_symbol_trgm_idx ON symbols USING gin (symbol gin_trgm_ops);
    CREATE INDEX IF NOT EXISTS symbols_name_trgm_idx ON symbols USING gin (name gin_trgm_ops);
END
$$;
