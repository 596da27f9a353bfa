//! Host bindings of the `qa-rule` world (`callqa:rule@0.1.0`), generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "qa-rule",
    with: {
        "callqa:rule/types.session": crate::rules::host::session::SessionHandle,
    },
    // Host functions may trap (a missing resource, a cap exceeded).
    imports: { default: trappable },
});

pub use self::callqa::rule::{explain, helpers, log, types};
pub use self::exports::callqa::rule::rule as guest;
