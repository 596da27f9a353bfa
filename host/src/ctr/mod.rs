//! ctr
