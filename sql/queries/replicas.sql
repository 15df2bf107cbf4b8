-- owner: slotmill.api.replicas
-- Read replicas and the consistency token (api/replicas.py): where the primary's WAL is
-- after a write, and how far a replica has replayed it.

-- name: write_position
-- The token a write returns, read on its own connection right after its COMMIT. The insert
-- position is past the commit record whatever synchronous_commit says; the write and flush
-- positions may still lie before it when commits are asynchronous.
SELECT pg_current_wal_insert_lsn()::text;

-- name: replay_position
-- How far this server's state goes: a standby's last replayed record, or (a server that is
-- not in recovery, e.g. the primary named as a replica) its own insert position. NULL: a
-- standby that has replayed nothing yet.
SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END::text;
