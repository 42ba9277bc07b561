//! avsb-core: the A vs B evaluation engine.
//!
//! It reads Proctor test matrices (and our compatible extensions), validates and compiles them
//! once, and assigns buckets bit-exactly as Proctor does. It does no I/O, reads no clock, draws
//! no random numbers and never panics: callers pass in the request time and any random number a
//! RANDOM test needs.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// Modules in pipeline order: each imports only from the ones above it (a test in
// `tests/module_layers.rs` keeps it so). Leaves first: Java's number formats, JSON text,
// Jackson's coercions, diagnostics, the US/Central clock format.
pub mod java;
pub mod json;
mod lenient;
pub mod diagnostic;
mod uscentral;
// The values rules compute with, and the context types that make them.
pub mod version;
pub mod useragent;
pub mod value;
// The document: payloads, the model, and its two readers.
pub mod payload;
pub mod document;
mod reader_fast;
pub mod reader;
// The schema, the rule language, and compiling a document against them.
pub mod schema;
pub mod rule;
pub mod bucketing;
pub mod compile;
// One request: force groups, evaluation, and Pipet's identify over raw values.
pub mod force;
pub mod eval;
pub mod pipet;

pub use compile::{Compilation, CompiledMatrix};
pub use diagnostic::{Diagnostic, Severity};
pub use document::{MatrixDocument, Payload};
pub use eval::{Assignment, Evaluation, Reason, Request, RuleFailure};
pub use force::{DefaultMode, ForceGroups};
pub use reader::DocumentError;
pub use schema::{ContextSchema, ContextType};
pub use value::{IntKind, MaybeBool, Value};
