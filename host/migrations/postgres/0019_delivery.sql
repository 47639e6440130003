-- The outbox becomes a leased queue: a message is queued until a delivery
-- leases it, then sent, queued again for a later attempt (due_at), or
-- failed for good with the reason after its last attempt.
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN due_at BIGINT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
UPDATE outbox SET status = 'queued', due_at = created_at WHERE status = 'pending';
UPDATE outbox SET attempts = 1 WHERE status IN ('sent', 'failed');
DROP INDEX outbox_status;
CREATE INDEX outbox_due ON outbox (status, due_at);
