//! qa
