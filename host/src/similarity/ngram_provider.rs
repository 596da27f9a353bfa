//! Character n-gram TF-IDF: the provider that needs no model. Character
//! n-grams need no word segmentation, so "稍后帮您跟进" and "我帮您跟进一下"
//! share "帮您" and "跟进" as "I'll follow up" and "following up" share
//! "follow" and "llow". The weights are fitted on the ruleset's examples: an
//! n-gram every example has ("您") says little, one only a few have ("催")
//! says much.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use super::{normalised_sparse, SimilarityProvider, Vector};

pub struct NgramProvider {
    idf: HashMap<u64, f32>,
    /// The weight of an n-gram no example has: the rarest there is.
    unseen_idf: f32,
}

/// n-grams of 1 to 3 characters; single characters only of scripts
/// without spaces, where one character can be a word (催, 等).
const MAX_N: usize = 3;

impl NgramProvider {
    pub fn fit(examples: &[String]) -> Self {
        let mut df: HashMap<u64, u32> = HashMap::new();
        for text in examples {
            for gram in counts(text).into_keys() {
                *df.entry(gram).or_default() += 1;
            }
        }
        let n = examples.len() as f32;
        // Smoothed IDF (as scikit-learn's): never zero, so a gram every
        // example shares still counts a little.
        let idf = df.into_iter().map(|(g, d)| (g, ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)).collect();
        NgramProvider { idf, unseen_idf: (1.0 + n).ln() + 1.0 }
    }

    pub fn vector(&self, text: &str) -> Vector {
        let weighted = counts(text)
            .into_iter()
            .map(|(g, tf)| (g, (1.0 + (tf as f32).ln()) * self.idf.get(&g).copied().unwrap_or(self.unseen_idf)))
            .collect();
        normalised_sparse(weighted)
    }
}

impl SimilarityProvider for NgramProvider {
    fn describe(&self) -> String {
        "ngram".into()
    }

    /// Chosen on the dev split of bench/intents (docs/similarity.md).
    fn default_threshold(&self) -> f32 {
        0.34
    }

    fn vectors(&self, texts: &[&str]) -> anyhow::Result<Vec<Vector>> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

/// Lower-cased letters and digits; everything else one space, the text
/// padded with one so that word starts and ends are n-grams of their own.
fn normalise(text: &str) -> Vec<char> {
    let mut out = vec![' '];
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if out.last() != Some(&' ') {
            out.push(' ');
        }
    }
    if out.last() != Some(&' ') {
        out.push(' ');
    }
    out
}

fn spaced(c: char) -> bool {
    c == ' ' || c.is_ascii() || ('\u{00c0}'..'\u{2e80}').contains(&c)
}

fn counts(text: &str) -> HashMap<u64, u32> {
    let chars = normalise(text);
    let mut out: HashMap<u64, u32> = HashMap::new();
    for n in 1..=MAX_N {
        for gram in chars.windows(n) {
            if gram.iter().all(|c| *c == ' ') || (n == 1 && spaced(gram[0])) {
                continue;
            }
            let mut h = FxHasher::default();
            gram.hash(&mut h);
            *out.entry(h.finish()).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paraphrases_score_above_unrelated_text_in_both_scripts() {
        let examples: Vec<String> =
            ["我帮您催一下", "我会跟进这个工单", "I'll follow up on this for you", "let me chase it"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let p = NgramProvider::fit(&examples);
        let best = |text: &str| examples.iter().map(|e| p.vector(text).dot(&p.vector(e))).fold(0.0f32, f32::max);
        assert!(best("稍后我帮您跟进这个工单") > best("今天天气不错"));
        assert!(best("I will follow up with the team") > best("what is your account number"));
        assert!((best("我帮您催一下") - 1.0).abs() < 1e-5);
        assert_eq!(best("!!!"), 0.0);
    }
}
