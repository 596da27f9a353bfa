#![no_std]
extern crate alloc;
use alloc::{string::String, vec::Vec};
// Measurement only: a bump allocator (fresh instances throw memory away).
struct Bump;
static mut NEXT: usize = 0;
static mut END: usize = 0;
unsafe impl core::alloc::GlobalAlloc for Bump {
    unsafe fn alloc(&self, l: core::alloc::Layout) -> *mut u8 {
        unsafe {
            let mut p = (NEXT + l.align() - 1) & !(l.align() - 1);
            if NEXT == 0 {
                unsafe extern "C" {
                    static __heap_base: u8;
                }
                NEXT = core::ptr::addr_of!(__heap_base) as usize;
                END = core::arch::wasm32::memory_size(0) * 65536;
                p = (NEXT + l.align() - 1) & !(l.align() - 1);
            }
            if p + l.size() > END {
                let pages = (l.size() + l.align() + 65535) / 65536 + 1;
                let old = core::arch::wasm32::memory_grow(0, pages);
                if old == usize::MAX {
                    return core::ptr::null_mut();
                }
                NEXT = old * 65536;
                END = NEXT + pages * 65536;
                p = (NEXT + l.align() - 1) & !(l.align() - 1);
            }
            NEXT = p + l.size();
            p as *mut u8
        }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}
#[global_allocator]
static A: Bump = Bump;
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
wit_bindgen::generate!({ world: "qa-rule", path: "../../../wit" });
use callqa::rule::types::{Session, Value};
use exports::callqa::rule::rule::{Descriptor, Guest, Outcome, RuleError, Verdict};
struct R;
impl Guest for R {
    fn describe() -> Descriptor {
        Descriptor { id: "tiny".into(), version: "0.1.0".into(), description: "tiny".into(), params: Vec::new() }
    }
    fn evaluate(session: &Session, _params: Vec<(String, Value)>) -> Result<Verdict, RuleError> {
        let n = session.segment_count();
        let outcome = if n > 0 { Outcome::Pass } else { Outcome::NotApplicable };
        Ok(Verdict {
            outcome,
            score: None,
            reason: Some(if n > 0 { "spoke".into() } else { "silent".into() }),
            findings: Vec::new(),
        })
    }
}
export!(R);
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(old: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    use core::alloc::GlobalAlloc;
    unsafe {
        if new_size == 0 {
            return align as *mut u8;
        }
        let p = A.alloc(core::alloc::Layout::from_size_align_unchecked(new_size, align));
        if !old.is_null() && old_size > 0 {
            core::ptr::copy_nonoverlapping(old, p, old_size.min(new_size));
        }
        p
    }
}
