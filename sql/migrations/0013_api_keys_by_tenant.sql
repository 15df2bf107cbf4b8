-- 0013: api_keys was the one table whose unique constraint did not start with tenant_id
-- (UNIQUE (key_hash)), against the rule that lets a distributed PostgreSQL shard every
-- table by tenant (docs/operations.md, "Distributed PostgreSQL (Citus)"). The host call
-- looks a key up by tenant and hash together (sql/queries/hostcall.sql), which the new
-- constraint's index serves as well; a hash of a random secret is unique either way.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_key_hash_key;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_tenant_id_key_hash_key UNIQUE (tenant_id, key_hash);
