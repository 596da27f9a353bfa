//! Alerts while the customer may still be on the line: when `serve`'s
//! real-time QA stores a sheet with a failing item of a rule marked
//! `alert`, the sheet's transaction also writes one outbox row per webhook
//! that takes that severity (`qa/sheet_store/outbox.rs`); [`delivery`]
//! posts them, signed ([`signature`]), until each webhook answers 2xx. The
//! contract receivers rely on is in docs/alerts.md.
//!
//! - [`webhook`]: the webhooks file.
//! - [`alert`]: which alerts a sheet owes, and their JSON body.
//! - [`signature`]: `Callqa-Signature`, signing and verifying.
//! - [`delivery`]: the task that empties the outbox.

pub mod alert;
pub mod delivery;
pub mod signature;
pub mod webhook;

pub use alert::{AlertBody, Severity};
pub use delivery::Delivery;
pub use webhook::{Webhook, WebhookSettings};
