//! `avsb._native`: avsb-core for Python.
//!
//! The boundary is crossed coarsely: a matrix is compiled once (`Engine`), a context is
//! converted once (`Evaluator.for_user` → `Scope`), and each flag call passes a test name and a
//! default and gets back a Python object prepared at load time. Nothing crosses as JSON text
//! per call. Shared state lives behind an `ArcSwap` (the current engine) and a mutex that is
//! never held while Python code runs, so the module is safe across threads and after `fork()`
//! (the interpreter lock is held by the forking thread, and no other thread can be inside a
//! critical section that released it).
//!
//! Map: [`engine`] the compiled matrix and its Python objects, [`evaluator`] an SDK instance's
//! shared state, [`scope`] one context's client, [`details`] a typed getter's result, [`group`]
//! `GroupAssignment`s, [`context`] contexts → requests, [`events`] the event buffer,
//! [`convert`] Python ↔ JSON, [`functions`] the module's functions and constants, [`errors`]
//! its exceptions.

use pyo3::prelude::*;

mod context;
mod convert;
mod details;
mod engine;
mod errors;
mod evaluator;
mod events;
mod functions;
mod group;
mod scope;

#[pymodule(gil_used = true)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<engine::Engine>()?;
    m.add_class::<evaluator::Evaluator>()?;
    m.add_class::<scope::Scope>()?;
    m.add_class::<details::FlagDetails>()?;
    m.add("MatrixError", py.get_type::<errors::MatrixError>())?;
    m.add("RequestError", py.get_type::<errors::RequestError>())?;
    m.add("REASONS", functions::REASONS.to_vec())?;
    m.add("ERROR_CODES", functions::ERROR_CODES.to_vec())?;
    m.add("PROCTOR_TEST_TYPES", avsb_core::schema::PROCTOR_TEST_TYPES.to_vec())?;
    m.add_function(wrap_pyfunction!(group::_set_group_assignment_type, m)?)?;
    m.add_function(wrap_pyfunction!(functions::payload_types, m)?)?;
    m.add_function(wrap_pyfunction!(functions::core_version, m)?)?;
    m.add_function(wrap_pyfunction!(functions::parse_user_agent, m)?)?;
    m.add_function(wrap_pyfunction!(functions::canonical_identifier_type, m)?)?;
    m.add_function(wrap_pyfunction!(functions::is_variable_name, m)?)?;
    m.add_function(wrap_pyfunction!(functions::rule_literal, m)?)?;
    Ok(())
}
