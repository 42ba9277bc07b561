//! The store conformance suite, shared by the backends' tests.

pub mod conformance;
