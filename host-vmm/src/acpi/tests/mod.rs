//! Tests of the assembled tables: structure, validation and iasl.

mod aml_blocks;
mod iasl;
pub(crate) mod iasl_util;
mod structure;
mod validation;
