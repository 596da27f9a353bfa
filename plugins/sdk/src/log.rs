//! Logging through the host, under the rule's id. Bytes per evaluation are
//! capped by the host; past the cap, lines are dropped and counted.

use crate::bindings::callqa::rule::log::{log, Level};

pub fn debug(message: &str) {
    log(Level::Debug, message)
}

pub fn info(message: &str) {
    log(Level::Info, message)
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

pub fn error(message: &str) {
    log(Level::Error, message)
}
