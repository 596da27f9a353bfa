//! Write `callqa` QA rules in Rust.
//!
//! A rule is a WebAssembly component implementing the `callqa:rule` WIT
//! contract (`wit/rule.wit`). This crate hides the `wit-bindgen` plumbing:
//! implement [`Rule`], call [`export_rule!`], build for `wasm32-wasip2`.
//!
//! ```no_run
//! use callqa_sdk::prelude::*;
//!
//! struct Greeting;
//!
//! impl Rule for Greeting {
//!     fn describe() -> Descriptor {
//!         Descriptor::new("greeting", "0.1.0", "The agent greets within the first seconds")
//!             .param(ParamSpec::integer("within-seconds", Some(10), "How soon the greeting must come"))
//!             .param(ParamSpec::text_list("phrases", &["hello", "您好"], "What counts as a greeting"))
//!     }
//!
//!     fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
//!         if !session.has_transcript() {
//!             return Ok(Verdict::not_applicable("the session has no transcript"));
//!         }
//!         let within_ms = params.integer("within-seconds")? as u32 * 1000;
//!         let phrases = params.text_list("phrases")?;
//!         match session.first_keyword_hit(Role::Agent, &phrases, Some(within_ms)) {
//!             Some(hit) => Ok(Verdict::pass().finding(Finding::at(&hit.segment, "greeted"))),
//!             None => Ok(Verdict::fail("no greeting in time")),
//!         }
//!     }
//! }
//!
//! export_rule!(Greeting);
//! ```
//!
//! The same words mean the same things here and in the host (`callqa`):
//! session, segment, event, verdict, finding; file for file.

// No std: a rule built without it imports only `callqa:rule`, not the 19
// WASI functions and two adapter modules std brings, which cuts a fresh
// instance's instantiation by half (`bench/nostd-probe`). Rules that use std
// still link this crate as before.
#![no_std]

#[macro_use]
extern crate alloc;
extern crate self as callqa_sdk;

/// The `alloc` types a rule needs, for rules built without std.
mod alloc_types {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
}

#[doc(hidden)]
pub use wit_bindgen;

/// The generated bindings of `callqa:rule@0.1.0`. Prefer the re-exports.
pub mod bindings {
    wit_bindgen::generate!({
        world: "qa-rule",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_qa_rule",
        default_bindings_module: "callqa_sdk::bindings",
        runtime_path: "callqa_sdk::wit_bindgen::rt",
    });
}

pub mod explain;
pub mod helpers;
pub mod log;
pub mod params;
pub mod session;
pub mod verdict;

pub use bindings::callqa::rule::types::{
    Agent, Channel, Characteristics, Contact, Event, InitiationMethod, Instant, Interruption, Role, RoleFigures,
    Segment, SegmentHit, Sentiment, Session, SimilarityQuery, SimilarityScore, Span, Value,
};
pub use bindings::exports::callqa::rule::rule::{
    Descriptor, Finding, Outcome, ParamKind, ParamSpec, RuleError, Verdict,
};
pub use params::Params;
pub use session::KeywordHit;

/// A QA rule: one item on a QA sheet.
///
/// By default both functions are called on a fresh instance for every
/// evaluation, so a rule keeps no state between sessions. A rule exported
/// with `export_rule!(MyRule, stateless)` promises not to rely on that and
/// may be evaluated many times in one instance.
pub trait Rule {
    /// Id, version, description and parameter schema. The host checks the
    /// ruleset's parameters against this schema when it loads the rule.
    fn describe() -> Descriptor;

    /// Judge one session. `params` holds every declared parameter with
    /// defaults applied. Return `Err` only when no verdict can be reached;
    /// "the rule does not apply" is [`Verdict::not_applicable`].
    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError>;
}

/// Everything a rule needs in one `use` (with the `alloc` types, for rules
/// built without std).
pub mod prelude {
    pub use crate::alloc_types::*;
    pub use crate::helpers::{find_all, minutes_between, nearest, Direction, TextMatch};
    pub use crate::{
        export_rule, Agent, Channel, Descriptor, Event, Finding, Instant, KeywordHit, Outcome, ParamKind, ParamSpec,
        Params, Role, Rule, RuleError, Segment, Sentiment, Session, Value, Verdict,
    };
}

/// Export a [`Rule`] implementation as the component's `callqa:rule/rule`.
///
/// `export_rule!(MyRule, stateless)` also declares that the rule keeps no
/// state between evaluations (no `static` it writes, no cache it relies on
/// being empty): the host may then reuse one warm instance for many
/// evaluations when the ruleset asks for it (`instance = "warm"`), which
/// saves the instantiation. A rule without the declaration always gets a
/// fresh instance.
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        #[doc(hidden)]
        pub struct __CallqaExportedRule;

        impl $crate::bindings::exports::callqa::rule::rule::Guest for __CallqaExportedRule {
            fn describe() -> $crate::Descriptor {
                <$rule as $crate::Rule>::describe()
            }

            fn evaluate(
                session: &$crate::Session,
                params: $crate::__private::Vec<($crate::__private::String, $crate::Value)>,
            ) -> ::core::result::Result<$crate::Verdict, $crate::RuleError> {
                <$rule as $crate::Rule>::evaluate(session, &$crate::Params::new(params))
            }
        }

        $crate::bindings::__export_qa_rule!(__CallqaExportedRule with_types_in $crate::bindings);
    };
    ($rule:ty, no_std) => {
        $crate::export_rule!($rule);
        $crate::__no_std_runtime!();
    };
    ($rule:ty, stateless, no_std) => {
        $crate::export_rule!($rule, stateless);
        $crate::__no_std_runtime!();
    };
    ($rule:ty, stateless) => {
        $crate::export_rule!($rule);

        // The declaration is a custom section the host reads at load
        // (`callqa:stateless`, version byte 1): a custom section changes
        // nothing in the component's WIT interface, so hosts that do not
        // know it load the rule as before.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[used]
        #[unsafe(link_section = "callqa:stateless")]
        static __CALLQA_STATELESS: [u8; 1] = [$crate::STATELESS_SECTION_VERSION];
    };
}

/// What std would provide a `#![no_std]` rule: an allocator that frees
/// (dlmalloc, the one std itself uses on wasm), and a panic handler that
/// logs the message at `error` before it traps, so the host reports a panic
/// with its message as it does for a std rule's.
#[doc(hidden)]
#[macro_export]
macro_rules! __no_std_runtime {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __CALLQA_ALLOCATOR: $crate::__private::Allocator =
            $crate::__private::Allocator::new_wasm($crate::__private::InitialMemoryThenGrow::new());

        // On wasm32-wasip2 wasi-libc's malloc provides `cabi_realloc`; without
        // std there is no libc, so the component model's allocation entry
        // point is defined here, on the allocator above.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
            unsafe { $crate::__private::cabi_realloc(old, old_len, align, new_len) }
        }

        // wasi-libc also provides the one memory routine Rust does not lower
        // to wasm instructions; slice and string comparisons call it.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
            unsafe { $crate::__private::memcmp(a, b, len) }
        }

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
            unsafe { $crate::__private::memcmp(a, b, len) }
        }

        #[cfg(target_arch = "wasm32")]
        #[panic_handler]
        fn __callqa_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::__private::report_panic(info)
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::alloc_types::{String, Vec};
    /// The allocator of a `no_std` rule: talc, fed first with the free pages
    /// of the initial memory (as wasi-libc's malloc is), then by growing it.
    #[cfg(target_arch = "wasm32")]
    pub type Allocator = talc::cell::TalcSyncCell<InitialMemoryThenGrow, talc::wasm::WasmBinning>;

    /// Where talc's memory comes from. A fresh instance usually never grows
    /// its memory: growing is a host call and fresh pages to reset.
    #[derive(Debug)]
    pub struct InitialMemoryThenGrow {
        initial_claimed: bool,
    }

    impl InitialMemoryThenGrow {
        pub const fn new() -> Self {
            InitialMemoryThenGrow { initial_claimed: false }
        }
    }

    const PAGE: usize = 64 << 10;

    // SAFETY: `acquire` neither allocates nor touches the allocator it feeds.
    #[cfg(target_arch = "wasm32")]
    unsafe impl talc::source::Source for InitialMemoryThenGrow {
        fn acquire<B: talc::base::binning::Binning>(
            talc: &mut talc::base::Talc<Self, B>,
            layout: core::alloc::Layout,
        ) -> Result<(), ()> {
            if !talc.source.initial_claimed {
                talc.source.initial_claimed = true;
                unsafe extern "C" {
                    static __heap_base: u8;
                }
                let base = core::ptr::addr_of!(__heap_base) as usize;
                let end = core::arch::wasm32::memory_size(0) * PAGE;
                // SAFETY: from the linker's heap base to the end of memory
                // nothing else lives; the allocator owns it from here on.
                if end > base && unsafe { talc.claim(base as *mut u8, end - base) }.is_some() {
                    return Ok(());
                }
            }
            // Room for the block, its alignment and talc's bookkeeping.
            let pages = (layout.size() + layout.align() + 1024).div_ceil(PAGE);
            let previous = core::arch::wasm32::memory_grow(0, pages);
            if previous == usize::MAX {
                return Err(());
            }
            // SAFETY: the pages were just added to memory and belong to nobody.
            unsafe { talc.claim((previous * PAGE) as *mut u8, pages * PAGE) }.map(|_| ()).ok_or(())
        }
    }

    /// The canonical ABI's `realloc`: a fresh block when `old_len` is 0,
    /// else the block resized. Never returns null: running out of memory
    /// traps, which the host reports as the memory cap.
    ///
    /// # Safety
    /// `old` must be a block of `old_len` bytes with alignment `align` from
    /// this allocator (or anything when `old_len` is 0); `align` a power of two.
    #[cfg(target_arch = "wasm32")]
    pub unsafe fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
        use alloc::alloc::{alloc, handle_alloc_error, realloc, Layout};
        if old_len == 0 && new_len == 0 {
            return align as *mut u8;
        }
        // SAFETY: the caller's contract above; sizes are non-zero here.
        unsafe {
            let layout = Layout::from_size_align_unchecked(if old_len == 0 { new_len } else { old_len }, align);
            let block = if old_len == 0 { alloc(layout) } else { realloc(old, layout, new_len) };
            if block.is_null() {
                handle_alloc_error(Layout::from_size_align_unchecked(new_len, align));
            }
            block
        }
    }

    /// C's `memcmp`: eight bytes at a time while they are equal, then
    /// bytewise (a string comparison is a loop of this; bytewise alone cost a
    /// scripted item's warm instance ~10 fuel per byte of its program).
    ///
    /// # Safety
    /// `a` and `b` must be readable for `len` bytes.
    #[cfg(target_arch = "wasm32")]
    pub unsafe fn memcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
        let mut start = 0;
        while start + 8 <= len {
            // SAFETY: within the `len` bytes the caller vouches for; unaligned reads.
            let (x, y) = unsafe {
                (
                    core::ptr::read_unaligned(a.add(start) as *const u64),
                    core::ptr::read_unaligned(b.add(start) as *const u64),
                )
            };
            if x != y {
                break;
            }
            start += 8;
        }
        for i in start..len {
            // SAFETY: within the `len` bytes the caller vouches for.
            let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
            if x != y {
                return x as i32 - y as i32;
            }
        }
        0
    }

    /// Logs `panicked at FILE:LINE: MESSAGE` and traps.
    #[cfg(target_arch = "wasm32")]
    pub fn report_panic(info: &core::panic::PanicInfo<'_>) -> ! {
        use core::fmt::Write;
        let mut message = String::new();
        let _ = match info.location() {
            Some(at) => write!(message, "panicked at {}:{}: {}", at.file(), at.line(), info.message()),
            None => write!(message, "panicked: {}", info.message()),
        };
        crate::log::error(&message);
        core::arch::wasm32::unreachable()
    }
}

/// The content of the `callqa:stateless` custom section.
#[doc(hidden)]
pub const STATELESS_SECTION_VERSION: u8 = 1;
