//! Pod template validation.
