//! avsb-core: the A vs B evaluation engine.
//!
//! It reads Proctor test matrices (and our compatible extensions), validates and compiles them
//! once, and assigns buckets bit-exactly as Proctor does. It does no I/O, reads no clock, draws
//! no random numbers and never panics: callers pass in the request time and any random number a
//! RANDOM test needs.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bucketing;
pub mod compile;
pub mod diagnostic;
pub mod eval;
pub mod force;
pub mod java;
pub mod matrix;
mod matrix_fast;
pub mod pipet;
pub mod rule;
pub mod schema;
mod uscentral;
pub mod useragent;
pub mod value;

pub use compile::{Compilation, Matrix};
pub use diagnostic::{Diagnostic, Severity};
pub use eval::{Assignment, Evaluation, Reason, Request, RuleFailure};
pub use force::{DefaultMode, ForceGroups};
pub use matrix::{Payload, TestMatrix};
pub use schema::{ContextSchema, ContextType};
pub use value::{IntKind, MaybeBool, Value};
