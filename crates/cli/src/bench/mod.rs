//! `stephook bench`: figures measured in one run and printed, never asserted (benchmarks are not
//! tests).

mod latency;
mod load;
mod loopback;
mod model_server;
mod procfs;
mod receiver;
mod temporal;
mod worker_process;
mod workflow_tasks;

pub use temporal::run as temporal;
