-- Indexes for the HTTP API's keyset pages (portable DDL: SQLite and PostgreSQL).
-- Steps are paged on (created_at, id) in both orders; deliveries on (created_at, step_id),
-- newest first, optionally within one state (the console's filter).
CREATE INDEX IF NOT EXISTS steps_by_created ON steps (created_at, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_created ON webhook_deliveries (created_at, step_id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_state_created
    ON webhook_deliveries (state, created_at, step_id);
