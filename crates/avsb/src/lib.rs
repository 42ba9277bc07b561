//! The `avsb` binary's library: its command line, kept here so tests drive the same code.

pub mod cli;
pub mod flag;
pub mod remote;
pub mod results;
pub mod serve;
