//! The module's exceptions, both `ValueError`s (as pydantic-core's are).

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;

create_exception!(_native, MatrixError, PyValueError, "A matrix, schema or datafile that cannot be used.");
create_exception!(_native, RequestError, PyValueError, "A request Pipet would refuse (its status and message).");
