-- Retention scans notifications by state and age (steps by age use steps_by_created, which the
-- API's paging adds).
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_state_age ON webhook_deliveries (state, updated_at);
