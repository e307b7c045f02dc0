-- A real agent step (portable DDL: SQLite and PostgreSQL): the provider's cached and reasoning
-- tokens, the time spent in tool calls, and the step's messages (the assistant message with its
-- tool calls, and the tool results), in OpenAI's chat message shape, in order.
ALTER TABLE steps ADD COLUMN cached_tokens BIGINT;
ALTER TABLE steps ADD COLUMN reasoning_tokens BIGINT;
ALTER TABLE step_metrics ADD COLUMN tool_execution_ms BIGINT;

CREATE TABLE IF NOT EXISTS step_messages (
    step_id TEXT NOT NULL REFERENCES steps (id),
    seq     BIGINT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (step_id, seq)
);
