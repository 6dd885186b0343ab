//! Tests of the assembled tables: structure, validation and iasl.

mod structure;
mod validation;
