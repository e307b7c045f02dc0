-- The outbox keeps its promise under every interleaving (portable DDL: SQLite and PostgreSQL).
--
-- endpoint / endpoint_url: which endpoint a notification is for, written when its step is
--   committed: a SHA-256 fingerprint of the full URL (claims match on it) and the URL with its
--   secrets redacted (for display). NULL: no endpoint chosen yet (a row written before 0.3, or
--   by a worker without a URL); the first endpoint that takes the row binds it.
-- lease_until: while a holder (a dispatcher or the webhook activity) sends the row, on the
--   database clock; NULL when nobody holds it. Kept apart from next_attempt_at so that the
--   webhook activity can hold a row without moving its due time.
ALTER TABLE webhook_deliveries ADD COLUMN endpoint TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN endpoint_url TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN lease_until BIGINT;

-- Every send, by whichever holder: where it went (redacted), under which claim, and whether
-- the holder still held the row when its result came back ('held') or had lost it ('lease_lost':
-- its lease ended and someone else took the row, or an operator re-queued it).
-- attempted_at is now when the send started (it was when it was recorded).
ALTER TABLE webhook_attempts ADD COLUMN url TEXT;
ALTER TABLE webhook_attempts ADD COLUMN holder TEXT;
ALTER TABLE webhook_attempts ADD COLUMN fence TEXT NOT NULL DEFAULT 'held';

-- The dispatchers running on this store, each heartbeating on the database clock: which
-- endpoints are served right now (a row waiting for an endpoint nobody serves is shown as such),
-- and whether a worker without a URL should queue notifications for the fleet's dispatchers
-- (one has run lately). A dispatcher that stops keeps its row, with stopped_at set.
CREATE TABLE IF NOT EXISTS dispatchers (
    id           TEXT PRIMARY KEY,
    endpoint     TEXT NOT NULL,
    endpoint_url TEXT NOT NULL,
    scope        TEXT NOT NULL,
    host         TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    seen_at      BIGINT NOT NULL,
    stopped_at   BIGINT
);
