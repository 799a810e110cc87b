//! Test support (placeholder while it is written).
