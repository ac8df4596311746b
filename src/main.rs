//! The `pullprintd` command line.
fn main() {}
