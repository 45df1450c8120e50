-- fm-store schema, version 3 (PostgreSQL): the JSON columns (events, stage outputs, records,
-- alert payloads) are compressed with lz4 instead of pglz. Compressing them was the largest
-- single item in PostgreSQL's profile under a burst of alerts; lz4 costs a fraction of pglz's
-- CPU for a similar size, which raised the sustained run rate by about 14% on our load test.
-- Only values written from now on are affected. Where lz4 is not available (PostgreSQL before
-- 14, or built without it) nothing changes and the migration still succeeds (the statements
-- are EXECUTEd, so even the syntax PostgreSQL 13 lacks fails inside the handler).
DO $$
BEGIN
    EXECUTE 'ALTER TABLE fm_events ALTER COLUMN event SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE fm_stage_journal ALTER COLUMN output SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE fm_stage_journal ALTER COLUMN error SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE fm_runs ALTER COLUMN input SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE fm_runs ALTER COLUMN output SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE fm_runs ALTER COLUMN record SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE fm_alerts ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 compression is not available; stored JSON stays compressed with pglz';
END
$$;
