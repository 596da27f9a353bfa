//! `talk-speed`: the agent speaks at a rate within [min-wpm, max-wpm].
//!
//! The rate is the conversation characteristics' agent `words-per-minute`
//! when reported (and not zero), otherwise it is computed from the agent's
//! transcript segments: words / (sum of the agent's segment durations in
//! minutes), where each CJK character (Han, Hiragana, Katakana, Hangul) is
//! one word and any other run of non-space characters holding a letter or a
//! digit is one word. Voice only: a chat, task or email is not applicable,
//! as is a call where the agent has no measurable speech.
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct TalkSpeed;

impl Rule for TalkSpeed {
    fn describe() -> Descriptor {
        Descriptor::new("talk-speed", "0.1.0", "The agent speaks within a words-per-minute range")
            .param(ParamSpec::integer("min-wpm", Some(100), "Slowest acceptable rate, words per minute (inclusive)"))
            .param(ParamSpec::integer("max-wpm", Some(220), "Fastest acceptable rate, words per minute (inclusive)"))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let min = params.integer("min-wpm")?;
        let max = params.integer("max-wpm")?;
        if min < 0 {
            return Err(RuleError::BadParams(format!("parameter `min-wpm` must not be negative, got {min}")));
        }
        if max < min {
            return Err(RuleError::BadParams(format!(
                "parameter `max-wpm` ({max}) must not be below `min-wpm` ({min})"
            )));
        }
        let contact = session.contact();
        if contact.channel != Channel::Voice {
            return Ok(Verdict::not_applicable("talk speed applies to voice contacts only"));
        }

        let reported = session.characteristics().and_then(|c| {
            c.roles.into_iter().find(|r| r.role == Role::Agent).and_then(|r| r.words_per_minute).filter(|&w| w > 0)
        });

        // The rate in hundredths of a word per minute, and where it came from.
        let (rate, detail) = match reported {
            Some(w) => (w as u64 * 100, "from the conversation characteristics".to_string()),
            None => {
                if !session.has_transcript() {
                    return Ok(Verdict::not_applicable(
                        "no agent words-per-minute in the characteristics and no transcript",
                    ));
                }
                let mut words: u64 = 0;
                let mut ms: u64 = 0;
                for s in session.segments_by_role(Role::Agent) {
                    let n = count_words(&s.text);
                    let d = s.end_ms.saturating_sub(s.begin_ms) as u64;
                    // A segment with words but no duration (or the reverse)
                    // says nothing about speed: leave it out of both sums.
                    if n > 0 && d > 0 {
                        words += n;
                        ms += d;
                    }
                }
                if words == 0 || ms == 0 {
                    return Ok(Verdict::not_applicable("the agent has no timed speech in the transcript"));
                }
                // words / (ms / 60000) * 100, rounded to the nearest hundredth.
                let rate = (words * 6_000_000 + ms / 2) / ms;
                (rate, format!("computed from the transcript: {words} words in {} s of agent speech", tenths(ms)))
            }
        };

        let shown = hundredths(rate);
        let finding = Finding::general(format!("agent speaks at {shown} words per minute, {detail}"));
        let (lo, hi) = (min as u64 * 100, max as u64 * 100);
        if rate < lo {
            Ok(Verdict::fail(format!("{shown} wpm is slower than the minimum {min} wpm")).score(0.0).finding(finding))
        } else if rate > hi {
            Ok(Verdict::fail(format!("{shown} wpm is faster than the maximum {max} wpm")).score(0.0).finding(finding))
        } else {
            Ok(Verdict::pass().score(1.0).reason(format!("{shown} wpm is within {min}..{max} wpm")).finding(finding))
        }
    }
}

/// Words in a text: each CJK character is one word; any other run of
/// non-space, non-CJK characters is one word when it holds a letter or a
/// digit (so stand-alone punctuation such as "，" or "—" is not a word).
fn count_words(text: &str) -> u64 {
    let mut n = 0;
    let mut in_run = false;
    let mut run_has_alnum = false;
    for c in text.chars() {
        // ASCII first: it is most of the text and needs no Unicode tables.
        let (space, cjk, alnum) = if c.is_ascii() {
            (c.is_ascii_whitespace(), false, c.is_ascii_alphanumeric())
        } else if is_cjk(c) {
            (false, true, true)
        } else {
            (c.is_whitespace(), false, c.is_alphanumeric())
        };
        if space {
            close(&mut in_run, &mut run_has_alnum, &mut n);
        } else if cjk {
            close(&mut in_run, &mut run_has_alnum, &mut n);
            n += 1;
        } else {
            in_run = true;
            run_has_alnum |= alnum;
        }
    }
    close(&mut in_run, &mut run_has_alnum, &mut n);
    n
}

/// Ends a run of non-CJK characters, counting it when it held a letter or digit.
fn close(in_run: &mut bool, has_alnum: &mut bool, n: &mut u64) {
    if *in_run && *has_alnum {
        *n += 1;
    }
    *in_run = false;
    *has_alnum = false;
}

/// Han ideographs, Hiragana, Katakana and Hangul.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF      // CJK Unified Ideographs Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x3134F  // Extensions B to H (planes 2 and 3)
        | 0x3005 | 0x3007    // 々 and 〇
        | 0x3041..=0x309F    // Hiragana
        | 0x30A0..=0x30FA | 0x30FC..=0x30FF // Katakana (not the middle dot ・)
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0xFF66..=0xFF9D    // half-width Katakana
        | 0x1100..=0x11FF    // Hangul Jamo
        | 0x3131..=0x318E    // Hangul compatibility Jamo
        | 0xA960..=0xA97F    // Hangul Jamo extended A
        | 0xAC00..=0xD7A3    // Hangul syllables
        | 0xD7B0..=0xD7FF    // Hangul Jamo extended B
    )
}

fn hundredths(v: u64) -> String {
    // Shown with one decimal, rounded.
    let t = (v + 5) / 10;
    format!("{}.{}", t / 10, t % 10)
}

fn tenths(ms: u64) -> String {
    let t = (ms + 50) / 100;
    format!("{}.{}", t / 10, t % 10)
}

export_rule!(TalkSpeed, stateless, no_std);
