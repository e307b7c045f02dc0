//! AgentWorkflow end to end on a real Temporal dev server (the `temporal` CLI), with a real
//! loopback receiver and a real SQLite store. Each test starts its own in-memory server on free
//! loopback ports; without the `temporal` binary the tests print a notice and pass.

mod agent;
mod failures;
mod harness;
mod holders;
mod input;
mod local_store;
mod newcomer;
mod outbox;
mod python_interop;
mod replay;
mod resilience;
mod runs;
