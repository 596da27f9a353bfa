//! The capabilities a rule imports, one module each with the same shape: an
//! `add_to_linker` and the implementation of the generated `Host` trait on
//! [`StoreState`]. A new capability is a new WIT interface plus a file here.

pub mod explain;
pub mod helpers;
pub mod log;
pub mod session;
pub mod wasi;

use wasmtime::component::Linker;

use super::store::StoreState;

pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    wasi::add_to_linker(linker)?;
    session::add_to_linker(linker)?;
    helpers::add_to_linker(linker)?;
    log::add_to_linker(linker)?;
    explain::add_to_linker(linker)?;
    Ok(())
}
