-- fm-store schema, version 3: PostgreSQL only (lz4 compression of its JSON columns). SQLite
-- does not compress values; nothing to do, but the version is kept in step.
SELECT 1;
