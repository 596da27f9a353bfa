//! Similarity of a session's segments to example sentences: the host
//! capability behind `session.similar-segments` and the `similar` operator
//! of scripted items. A rule sends examples and gets scores; it never
//! reaches the network.
//!
//! Two providers behind [`SimilarityProvider`], chosen by the ruleset's
//! `[similarity]` table ([`SimilarityConfig`]):
//!
//! - `ngram` (the default): character n-gram TF-IDF cosine, its weights
//!   fitted on every example of the ruleset at load. No model, no segmenter:
//!   character n-grams work for Chinese as for English.
//! - `embeddings`: an OpenAI-compatible `/v1/embeddings` endpoint.
//!
//! Vectors are cached by text ([`VectorCache`]), so a segment is embedded
//! once per session whichever rules ask, and an example once per load. The
//! inspector calls [`Similarity::prepare`] before a session's rules run:
//! embedding a transcript takes longer than a rule's wall-clock deadline,
//! so it happens outside the sandbox's clock, and a failure is remembered
//! for the session so that each of its rules reports it at once instead of
//! waiting out the endpoint again. docs/similarity.md has the method and
//! the figures.

pub mod embeddings_provider;
pub mod ngram_provider;
pub mod vector_cache;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use parking_lot::Mutex;
use serde::Deserialize;

pub use embeddings_provider::EmbeddingsProvider;
pub use ngram_provider::NgramProvider;
pub use vector_cache::VectorCache;

use crate::session::{Role, Session};

/// A unit-length vector; cosine similarity is the dot product.
#[derive(Clone, Debug, PartialEq)]
pub enum Vector {
    Dense(Vec<f32>),
    /// Sorted by index, no repeats.
    Sparse(Vec<(u64, f32)>),
}

impl Vector {
    pub fn dot(&self, other: &Vector) -> f32 {
        match (self, other) {
            (Vector::Dense(a), Vector::Dense(b)) => a.iter().zip(b).map(|(x, y)| x * y).sum(),
            (Vector::Sparse(a), Vector::Sparse(b)) => {
                let (mut i, mut j, mut sum) = (0, 0, 0.0);
                while i < a.len() && j < b.len() {
                    match a[i].0.cmp(&b[j].0) {
                        std::cmp::Ordering::Less => i += 1,
                        std::cmp::Ordering::Greater => j += 1,
                        std::cmp::Ordering::Equal => {
                            sum += a[i].1 * b[j].1;
                            i += 1;
                            j += 1;
                        }
                    }
                }
                sum
            }
            _ => 0.0,
        }
    }

    /// The direction of the sum of `parts`: turns judged together. For
    /// n-grams this is close to the vector of the turns' joined text; for
    /// embeddings it is the usual mean pooling of sentence vectors, and it
    /// lets each segment be embedded once whatever the window.
    pub fn combined(parts: &[&Vector]) -> Vector {
        match parts {
            [one] => (*one).clone(),
            _ if parts.iter().all(|p| matches!(p, Vector::Dense(_))) => {
                let dims = parts.iter().map(|p| if let Vector::Dense(d) = p { d.len() } else { 0 }).max().unwrap_or(0);
                let mut sum = vec![0.0f32; dims];
                for part in parts {
                    if let Vector::Dense(d) = part {
                        sum.iter_mut().zip(d).for_each(|(s, x)| *s += x);
                    }
                }
                normalised_dense(sum)
            }
            _ => {
                let mut sum: HashMap<u64, f32> = HashMap::new();
                for part in parts {
                    if let Vector::Sparse(s) = part {
                        for (i, w) in s {
                            *sum.entry(*i).or_default() += w;
                        }
                    }
                }
                normalised_sparse(sum.into_iter().collect())
            }
        }
    }
}

pub(crate) fn normalised_dense(mut v: Vec<f32>) -> Vector {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    Vector::Dense(v)
}

pub(crate) fn normalised_sparse(mut v: Vec<(u64, f32)>) -> Vector {
    v.sort_unstable_by_key(|(i, _)| *i);
    let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, x)| *x /= norm);
    }
    Vector::Sparse(v)
}

/// Turns texts into unit vectors.
pub trait SimilarityProvider: Send + Sync {
    /// What an error names: `ngram`, or the endpoint and model.
    fn describe(&self) -> String;
    /// The threshold used when an operator gives none: scores of different
    /// providers live on different scales (an E5 model scores unrelated
    /// sentences around 0.85; n-grams near 0).
    fn default_threshold(&self) -> f32;
    /// The vectors of `texts`, in order.
    fn vectors(&self, texts: &[&str]) -> anyhow::Result<Vec<Vector>>;
}

/// Which provider.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    #[default]
    Ngram,
    Embeddings,
}

/// The ruleset's `[similarity]` table.
///
/// ```toml
/// [similarity]
/// provider = "embeddings"                  # or "ngram" (the default)
/// url = "http://127.0.0.1:18090"           # base URL or the full /v1/embeddings URL
/// model = "multilingual-e5-small-q4"
/// api-key-env = "EMBEDDINGS_API_KEY"       # optional: the env var holding a bearer token
/// threshold = 0.92                         # optional: the default of `similar` operators
/// timeout-ms = 5000                        # per request
/// retries = 2
/// batch-size = 64
/// dimensions = 384                         # optional: refuse vectors of another size
/// input-type = "query"                     # sent as `input_type` (E5: "query" for similarity)
/// prefix = ""                              # prepended to every text (E5 without input_type: "query: ")
/// ```
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SimilarityConfig {
    #[serde(default)]
    pub provider: ProviderKind,
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub threshold: Option<f32>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    pub batch_size: Option<usize>,
    pub dimensions: Option<usize>,
    pub input_type: Option<String>,
    pub prefix: Option<String>,
}

/// What a rule asks: the segments to judge and the examples to judge them by.
#[derive(Clone, Debug, Default)]
pub struct SimilarityQuery {
    pub role: Option<Role>,
    /// Segments that begin within `[begin, end)`.
    pub range: Option<(u32, u32)>,
    pub window: u32,
    pub examples: Vec<String>,
    pub negative_examples: Vec<String>,
    pub threshold: Option<f32>,
}

/// One segment judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// Index into the session's segments.
    pub segment: usize,
    pub score: f32,
    pub example: u32,
    pub negative: Option<(f32, u32)>,
    pub matched: bool,
}

/// A ruleset's similarity: its provider, its cache and the sessions whose
/// segments could not be embedded.
pub struct Similarity {
    provider: Box<dyn SimilarityProvider>,
    cache: VectorCache,
    /// The ruleset's examples: embedded again by [`Self::prepare`] when the
    /// cache was emptied, never inside a rule's deadline.
    examples: Vec<String>,
    threshold: Option<f32>,
    failed: Mutex<HashMap<String, String>>,
    /// The provider's last failure: for [`QUIET_AFTER_FAILURE`] every
    /// session fails at once with it, instead of each waiting out the
    /// endpoint's timeouts and retries (a `check` of a thousand sessions
    /// against an endpoint that is down would otherwise take hours).
    last_failure: Mutex<Option<(Instant, String)>>,
}

/// How long a failed provider is not asked again.
const QUIET_AFTER_FAILURE: Duration = Duration::from_secs(10);

impl Similarity {
    /// The provider the config names, fitted on (or warmed with) every
    /// example of the ruleset. An endpoint that is down at load does not
    /// refuse the ruleset (it may come back); its items report it until it does.
    pub fn new(config: &SimilarityConfig, examples: &[String]) -> anyhow::Result<Self> {
        if let Some(t) = config.threshold {
            if !(-1.0..=1.0).contains(&t) {
                bail!("[similarity] threshold {t} must be a cosine similarity, between -1 and 1");
            }
        }
        let provider: Box<dyn SimilarityProvider> = match config.provider {
            ProviderKind::Ngram => {
                if config.url.is_some() || config.model.is_some() {
                    bail!("[similarity] `url` and `model` are for provider = \"embeddings\"; the n-gram provider needs no model");
                }
                Box::new(NgramProvider::fit(examples))
            }
            ProviderKind::Embeddings => Box::new(EmbeddingsProvider::new(config).context("[similarity]")?),
        };
        let mut similarity = Similarity::with_provider(provider, config.threshold);
        similarity.examples = examples.to_vec();
        let texts: Vec<&str> = examples.iter().map(String::as_str).collect();
        if let Err(e) = similarity.vectors(&texts) {
            tracing::warn!("the similarity examples could not be embedded at load (tried again per session): {e}");
        }
        Ok(similarity)
    }

    pub fn with_provider(provider: Box<dyn SimilarityProvider>, threshold: Option<f32>) -> Self {
        Similarity {
            provider,
            cache: VectorCache::default(),
            examples: Vec::new(),
            threshold,
            failed: Mutex::new(HashMap::new()),
            last_failure: Mutex::new(None),
        }
    }

    /// The provider of a rule run without a ruleset (a golden case, `callqa
    /// rule test`): n-grams fitted on the query's own examples.
    pub fn for_query(query: &SimilarityQuery) -> Self {
        let examples: Vec<String> = query.examples.iter().chain(&query.negative_examples).cloned().collect();
        Similarity::with_provider(Box::new(NgramProvider::fit(&examples)), None)
    }

    pub fn describe(&self) -> String {
        self.provider.describe()
    }

    /// Vectors of every segment of `session`, before its rules run (outside
    /// their deadline). A failure is kept for the session until [`Self::finish`].
    pub fn prepare(&self, session: &Session) {
        let examples = self.examples.iter().map(String::as_str);
        let texts: Vec<&str> = examples.chain(session.segments().iter().map(|s| s.text.as_str())).collect();
        if let Err(e) = self.vectors(&texts) {
            self.failed.lock().insert(session.id.clone(), e);
        }
    }

    /// Forget the session's failure, once its sheet is done.
    pub fn finish(&self, session: &Session) {
        if !self.failed.lock().is_empty() {
            self.failed.lock().remove(&session.id);
        }
    }

    /// The cached vectors of `texts`, the missing ones asked of the provider
    /// in one call. The error names the provider.
    fn vectors(&self, texts: &[&str]) -> Result<Vec<Arc<Vector>>, String> {
        let mut found = self.cache.get_all(texts);
        let mut missing: Vec<&str> = Vec::new();
        for (text, v) in texts.iter().zip(&found) {
            if v.is_none() && !missing.contains(text) {
                missing.push(text);
            }
        }
        if !missing.is_empty() {
            if let Some((at, why)) = &*self.last_failure.lock() {
                if at.elapsed() < QUIET_AFTER_FAILURE {
                    let ago = at.elapsed().as_secs_f32();
                    return Err(format!("{why} (not asked again: that was {ago:.1} s ago)"));
                }
            }
            let computed = match self.provider.vectors(&missing) {
                Ok(v) => v,
                Err(e) => {
                    let why = format!("{e:#}");
                    *self.last_failure.lock() = Some((Instant::now(), why.clone()));
                    return Err(why);
                }
            };
            let computed: Vec<Arc<Vector>> = computed.into_iter().map(Arc::new).collect();
            self.cache.insert_all(&missing, &computed);
            let by_text: HashMap<&str, &Arc<Vector>> = missing.iter().copied().zip(&computed).collect();
            for (text, v) in texts.iter().zip(found.iter_mut()) {
                if v.is_none() {
                    *v = by_text.get(text).map(|x| (*x).clone());
                }
            }
        }
        Ok(found.into_iter().map(|v| v.unwrap_or_else(|| Arc::new(Vector::Sparse(Vec::new())))).collect())
    }

    /// Each segment of the query's role and range, in conversation order,
    /// with its nearest example and negative example.
    pub fn score(&self, session: &Session, query: &SimilarityQuery) -> Result<Vec<Scored>, String> {
        if query.examples.is_empty() {
            return Err("a similarity query needs at least one example".into());
        }
        if let Some(why) = self.failed.lock().get(&session.id) {
            return Err(why.clone());
        }
        let segments = session.segments();
        let window = query.window.max(1) as usize;
        let wanted: Vec<usize> = (0..segments.len())
            .filter(|&i| query.role.is_none_or(|r| segments[i].role == r))
            .filter(|&i| query.range.is_none_or(|(b, e)| segments[i].begin_ms >= b && segments[i].begin_ms < e))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        // Every segment a window reaches back to, each once.
        let first = wanted[0].saturating_sub(window - 1);
        let reached: Vec<&str> = segments[first..=wanted[wanted.len() - 1]].iter().map(|s| s.text.as_str()).collect();
        let mut texts: Vec<&str> = query.examples.iter().map(String::as_str).collect();
        texts.extend(query.negative_examples.iter().map(String::as_str));
        texts.extend(&reached);
        let vectors = self.vectors(&texts)?;
        let (examples, rest) = vectors.split_at(query.examples.len());
        let (negatives, turns) = rest.split_at(query.negative_examples.len());
        let threshold = query.threshold.or(self.threshold).unwrap_or_else(|| self.provider.default_threshold());
        let nearest = |v: &Vector, to: &[Arc<Vector>]| {
            to.iter().enumerate().map(|(i, x)| (v.dot(x), i as u32)).fold(None, |best: Option<(f32, u32)>, x| {
                if best.is_none_or(|b| x.0 > b.0) {
                    Some(x)
                } else {
                    best
                }
            })
        };
        Ok(wanted
            .into_iter()
            .map(|i| {
                let from = i.saturating_sub(window - 1);
                let parts: Vec<&Vector> = (from..=i).map(|j| &*turns[j - first]).collect();
                let v = Vector::combined(&parts);
                let (score, example) = nearest(&v, examples).unwrap_or((0.0, 0));
                let negative = nearest(&v, negatives);
                let matched = score >= threshold && negative.is_none_or(|(n, _)| score > n);
                Scored { segment: i, score, example, negative, matched }
            })
            .collect())
    }
}

/// The examples of every `similar` operator of a ruleset's items, for
/// fitting and warming the provider at load.
pub fn examples_of(operators: &[&toml::Table]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for op in operators {
        if op.get("kind").and_then(|k| k.as_str()) != Some("similar") {
            continue;
        }
        for field in ["examples", "negative-examples"] {
            if let Some(list) = op.get(field).and_then(|v| v.as_array()) {
                for text in list.iter().filter_map(|v| v.as_str()) {
                    if !out.iter().any(|t| t == text) {
                        out.push(text.to_owned());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_vectors_are_unit_length_and_one_part_is_itself() {
        let a = normalised_dense(vec![1.0, 0.0]);
        let b = normalised_dense(vec![0.0, 1.0]);
        assert_eq!(Vector::combined(&[&a]), a);
        let c = Vector::combined(&[&a, &b]);
        assert!((c.dot(&c) - 1.0).abs() < 1e-6);
        assert!((c.dot(&a) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let s = normalised_sparse(vec![(3, 1.0), (1, 1.0)]);
        let t = normalised_sparse(vec![(1, 2.0)]);
        assert!((s.dot(&t) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }
}
