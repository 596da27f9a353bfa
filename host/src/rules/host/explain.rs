//! `callqa:rule/explain`: the explanation a rule attaches to one evaluation
//! (a scripted item's trace), kept on the store and put on the sheet item.

use wasmtime::component::{HasSelf, Linker};

use crate::rules::bindings::explain as wit;
use crate::rules::store::StoreState;

pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    Ok(wit::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)?)
}

/// The explanation of the evaluation in progress.
#[derive(Debug, Default)]
pub struct Explanation {
    cap: usize,
    /// The JSON object, checked when the evaluation concludes.
    pub(crate) trace: Option<String>,
    /// Bytes of a trace refused for its size (the item becomes an
    /// `output-cap` error naming it).
    pub(crate) refused_bytes: usize,
}

impl Explanation {
    pub fn new(cap: usize) -> Self {
        Explanation { cap, ..Default::default() }
    }
}

impl wit::Host for StoreState {
    fn trace(&mut self, json: String) -> wasmtime::Result<()> {
        let explanation = &mut self.explanation;
        if json.len() > explanation.cap {
            explanation.refused_bytes = json.len();
            explanation.trace = None;
        } else {
            explanation.refused_bytes = 0;
            explanation.trace = Some(json);
        }
        Ok(())
    }
}
