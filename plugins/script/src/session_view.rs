//! The session as the operators of one evaluation read it: each part fetched
//! from the host at most once (the contact, the events, the
//! characteristics), whichever operators ask for it.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::OnceCell;

use callqa_sdk::prelude::*;
use callqa_sdk::{Characteristics, Contact};

pub struct SessionView<'a> {
    session: &'a Session,
    contact: OnceCell<Contact>,
    events: OnceCell<Vec<Event>>,
    characteristics: OnceCell<Option<Characteristics>>,
    end_ms: OnceCell<u32>,
}

impl<'a> SessionView<'a> {
    pub fn new(session: &'a Session) -> Self {
        SessionView {
            session,
            contact: OnceCell::new(),
            events: OnceCell::new(),
            characteristics: OnceCell::new(),
            end_ms: OnceCell::new(),
        }
    }

    pub fn session(&self) -> &Session {
        self.session
    }

    pub fn contact(&self) -> &Contact {
        self.contact.get_or_init(|| self.session.contact())
    }

    /// Every event, ordered by instant (one host call for every event operator).
    pub fn events(&self) -> &[Event] {
        self.events.get_or_init(|| self.session.events(None))
    }

    pub fn characteristics(&self) -> Option<&Characteristics> {
        self.characteristics.get_or_init(|| self.session.characteristics()).as_ref()
    }

    /// The instant the conversation's offsets count from: when the agent
    /// was connected, else when the contact began (as the compiled rules do).
    pub fn start(&self) -> Option<i64> {
        let c = self.contact();
        c.connected_to_agent_at.or(c.initiated_at)
    }

    /// The offset of an instant within the conversation, when it falls in it.
    pub fn offset_of(&self, at: i64) -> Option<u32> {
        let start = self.start()?;
        u32::try_from(at.checked_sub(start)?).ok()
    }

    /// Where the conversation ends, in offset: the reported length, else the
    /// end of the last segment.
    pub fn conversation_end_ms(&self) -> u32 {
        *self.end_ms.get_or_init(|| {
            self.characteristics()
                .and_then(|c| c.total_conversation_ms)
                .unwrap_or_else(|| self.session.segments().iter().map(|s| s.end_ms).max().unwrap_or(0))
        })
    }
}

/// An instant as ISO 8601 UTC to the second: `2026-12-04T08:15:00Z`.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    alloc::format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}
