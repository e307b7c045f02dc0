-- Retention scans steps by age and notifications by state and age.
CREATE INDEX IF NOT EXISTS steps_by_created_at ON steps (created_at, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_state_age ON webhook_deliveries (state, updated_at);
