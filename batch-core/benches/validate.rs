//! Placeholder (the validation benchmark is being written).
fn main() {}
