//! Object metadata validation.
