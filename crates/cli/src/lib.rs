//! The `stephook` command line, as a library so integration tests can drive the same code.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod logging;
pub mod open;
pub mod receive;
pub mod report;
pub mod temporal;
