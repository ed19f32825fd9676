-- Interlock schema migration: each task keeps the hash of the request that created it
-- (lifecycle.request_hash), so an idempotency key reused for a different request is refused.
-- Tasks created before it keep NULL and are returned for their key as before.
ALTER TABLE tasks ADD COLUMN request_hash TEXT;
