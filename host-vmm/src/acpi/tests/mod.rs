//! Tests of the assembled tables: structure, validation and iasl.

mod iasl;
mod iasl_util;
mod structure;
mod validation;
