//! Similarity, measured: `cargo bench --bench similarity` (with
//! `source scripts/test-servers.sh` for the embeddings rows; without
//! `CALLQA_EMBEDDINGS_URL` they are left out, and said so).
//!
//! Quality, on the labelled utterances of `bench/intents/` (docs/similarity.md):
//! per intent, precision, recall and F1 on the test split of keyword
//! matching (the `phrase` operator's semantics, `helpers.contains-any`), the
//! `ngram` provider and the `embeddings` provider, each provider's one
//! threshold chosen on the dev split (best macro F1 over the eight intents).
//! The providers are scored by `Similarity::score`, the code behind
//! `session.similar-segments`; the guest only keeps the matched segments.
//!
//! Speed, on the rules benchmark's 10-minute call (150 segments): one
//! evaluation of a scripted item with a `similar` operator, cold (the
//! session's segments not yet embedded: `Similarity::prepare` plus the
//! evaluation) and warm (cached), and the cost of embedding a session.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use callqa::rules::host::helpers::contains_any;
use callqa::rules::{evaluation, RuleEngine, Ruleset};
use callqa::session::{synthetic, Role, Session};
use callqa::similarity::{ProviderKind, Similarity, SimilarityConfig, SimilarityQuery};
use serde::Deserialize;

#[derive(Deserialize)]
struct Utterance {
    text: String,
    lang: String,
    role: String,
    intent: String,
    kind: String,
    split: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct Intent {
    role: String,
    keywords: Vec<String>,
    examples: Vec<String>,
    negative_examples: Vec<String>,
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn role(name: &str) -> Role {
    match name {
        "agent" => Role::Agent,
        "customer" => Role::Customer,
        _ => Role::System,
    }
}

/// Every utterance as one segment of one session, judged alone (window 1).
fn session_of(utterances: &[Utterance]) -> Session {
    let segments: Vec<_> = utterances
        .iter()
        .enumerate()
        .map(|(i, u)| {
            serde_json::json!({"id": format!("u{i}"), "role": u.role, "text": u.text,
                               "begin_ms": i as u32 * 1000, "end_ms": i as u32 * 1000 + 900})
        })
        .collect();
    let mut s: Session = serde_json::from_value(serde_json::json!({
        "id": "intents", "contact": {"contact_id": "intents", "channel": "voice"}, "segments": segments,
    }))
    .unwrap();
    s.normalise().unwrap();
    s
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Counts {
    fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            _ => {}
        }
    }
    fn prf(self) -> (f64, f64, f64) {
        let p = if self.tp + self.fp == 0 { 0.0 } else { self.tp as f64 / (self.tp + self.fp) as f64 };
        let r = if self.tp + self.fn_ == 0 { 0.0 } else { self.tp as f64 / (self.tp + self.fn_) as f64 };
        let f = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
        (p, r, f)
    }
}

/// Per intent and utterance: (score, best negative score), agents' only.
type Scores = BTreeMap<String, Vec<Option<(f32, Option<f32>)>>>;

fn scores(similarity: &Similarity, session: &Session, intents: &BTreeMap<String, Intent>) -> Scores {
    let n = session.segments().len();
    intents
        .iter()
        .map(|(name, intent)| {
            let query = SimilarityQuery {
                role: Some(role(&intent.role)),
                window: 1,
                examples: intent.examples.clone(),
                negative_examples: intent.negative_examples.clone(),
                ..Default::default()
            };
            let mut per = vec![None; n];
            for s in similarity.score(session, &query).unwrap_or_else(|e| panic!("{name}: {e}")) {
                per[s.segment] = Some((s.score, s.negative.map(|x| x.0)));
            }
            (name.clone(), per)
        })
        .collect()
}

fn matched(score: Option<(f32, Option<f32>)>, threshold: f32, negatives: bool) -> bool {
    score.is_some_and(|(s, n)| s >= threshold && (!negatives || n.is_none_or(|n| s > n)))
}

fn macro_f1(
    utterances: &[Utterance],
    intents: &BTreeMap<String, Intent>,
    split: &str,
    predict: &dyn Fn(&str, usize) -> bool,
) -> f64 {
    let per = per_intent(utterances, intents, split, predict);
    per.values().map(|c| c.prf().2).sum::<f64>() / per.len() as f64
}

fn per_intent(
    utterances: &[Utterance],
    intents: &BTreeMap<String, Intent>,
    split: &str,
    predict: &dyn Fn(&str, usize) -> bool,
) -> BTreeMap<String, Counts> {
    intents
        .keys()
        .map(|name| {
            let mut c = Counts::default();
            for (i, u) in utterances.iter().enumerate().filter(|(_, u)| u.split == split) {
                c.add(predict(name, i), u.intent == *name);
            }
            (name.clone(), c)
        })
        .collect()
}

/// The threshold of best dev macro F1, on a grid of 0.005.
fn tune(utterances: &[Utterance], intents: &BTreeMap<String, Intent>, scores: &Scores, negatives: bool) -> f32 {
    let mut best = (f64::MIN, 0.0f32);
    for step in 0..=200 {
        let t = step as f32 * 0.005;
        let f = macro_f1(utterances, intents, "dev", &|name, i| matched(scores[name][i], t, negatives));
        if f > best.0 {
            best = (f, t);
        }
    }
    best.1
}

struct Method {
    name: String,
    per: BTreeMap<String, Counts>,
    /// Wrongly matched negations and near misses of the test split.
    negations: (u32, u32),
    near_misses: (u32, u32),
    paraphrases: (u32, u32),
}

fn method(
    name: String,
    utterances: &[Utterance],
    intents: &BTreeMap<String, Intent>,
    predict: &dyn Fn(&str, usize) -> bool,
) -> Method {
    let per = per_intent(utterances, intents, "test", predict);
    let count = |kind: &str, wanted: bool| {
        let mut hit = 0;
        let mut all = 0;
        for (i, u) in utterances.iter().enumerate().filter(|(_, u)| u.split == "test" && u.kind == kind) {
            if u.role != "agent" {
                continue;
            }
            all += 1;
            let any = intents.keys().any(|n| predict(n, i) && (!wanted || *n == u.intent));
            if any {
                hit += 1;
            }
        }
        (hit, all)
    };
    Method {
        name,
        per,
        negations: count("negation", false),
        near_misses: count("near-miss", false),
        paraphrases: count("paraphrase", true),
    }
}

fn quality(embeddings: Option<&SimilarityConfig>) {
    let dir = root().join("bench/intents");
    let utterances: Vec<Utterance> = std::fs::read_to_string(dir.join("utterances.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let intents: BTreeMap<String, Intent> =
        toml::from_str(&std::fs::read_to_string(dir.join("intents.toml")).unwrap()).unwrap();
    let session = session_of(&utterances);
    let all_examples: Vec<String> =
        intents.values().flat_map(|i| i.examples.iter().chain(&i.negative_examples)).cloned().collect();
    let count = |split: &str| utterances.iter().filter(|u| u.split == split).count();
    println!(
        "quality: {} utterances ({} zh, {} en; dev {}, test {}), {} intents; reported on the test split",
        utterances.len(),
        utterances.iter().filter(|u| u.lang == "zh").count(),
        utterances.iter().filter(|u| u.lang == "en").count(),
        count("dev"),
        count("test"),
        intents.len()
    );

    let mut methods = Vec::new();
    let keyword = |name: &str, i: usize| {
        let intent = &intents[name];
        utterances[i].role == intent.role && contains_any(&utterances[i].text, &intent.keywords).is_some()
    };
    methods.push(method("keywords".into(), &utterances, &intents, &keyword));

    let mut providers: Vec<(String, Similarity)> = vec![(
        "ngram".into(),
        Similarity::new(&SimilarityConfig::default(), &all_examples).expect("the n-gram provider"),
    )];
    if let Some(config) = embeddings {
        let started = Instant::now();
        let similarity = Similarity::new(config, &all_examples).expect("the embeddings provider");
        similarity.prepare(&session);
        println!(
            "embeddings: {} utterances and {} examples embedded in {:.1} s",
            utterances.len(),
            all_examples.len(),
            started.elapsed().as_secs_f64()
        );
        providers.push(("embeddings".into(), similarity));
    }
    for (name, similarity) in &providers {
        let scores = scores(similarity, &session, &intents);
        for negatives in [true, false] {
            let t = tune(&utterances, &intents, &scores, negatives);
            let label = format!("{name}{} t={t:.3}", if negatives { "" } else { " (no negatives)" });
            methods.push(method(label, &utterances, &intents, &|n, i| matched(scores[n][i], t, negatives)));
        }
    }

    println!();
    print!("{:<14}", "intent");
    for m in &methods {
        print!(" | {:^26}", m.name);
    }
    println!();
    print!("{:<14}", "");
    for _ in &methods {
        print!(" | {:>8} {:>8} {:>8}", "P", "R", "F1");
    }
    println!();
    let names: Vec<&String> = intents.keys().collect();
    for name in &names {
        print!("{name:<14}");
        for m in &methods {
            let (p, r, f) = m.per[*name].prf();
            print!(" | {p:>8.2} {r:>8.2} {f:>8.2}");
        }
        println!();
    }
    print!("{:<14}", "macro");
    for m in &methods {
        let n = m.per.len() as f64;
        let (p, r, f) = m.per.values().fold((0.0, 0.0, 0.0), |a, c| {
            let (p, r, f) = c.prf();
            (a.0 + p / n, a.1 + r / n, a.2 + f / n)
        });
        print!(" | {p:>8.2} {r:>8.2} {f:>8.2}");
    }
    println!();
    println!();
    for m in &methods {
        println!(
            "{:<34} paraphrases found {}/{}, negations matched {}/{}, agent near misses matched {}/{}",
            m.name, m.paraphrases.0, m.paraphrases.1, m.negations.0, m.negations.1, m.near_misses.0, m.near_misses.1
        );
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

const CHASE: &[&str] = &[
    "我马上帮您催一下",
    "我会跟进这个问题，有结果通知您",
    "I'll chase this for you",
    "I will follow up and call you back",
];
const NOT_CHASE: &[&str] = &["我不会帮您催的", "I won't chase this for you"];

/// A scripted item whose only operator is `similar` (the chase examples).
fn ruleset_text(provider: &str) -> String {
    format!(
        r#"
{provider}
[[rule]]
id = "promised-chase"
module = "bundled:script"
[rule.operators.A]
kind = "similar"
role = "agent"
examples = {CHASE:?}
negative-examples = {NOT_CHASE:?}
[rule.script]
text = "return !A;"
"#
    )
}

fn speed(embeddings: Option<&SimilarityConfig>) {
    let engine = RuleEngine::new(None).unwrap();
    let call = synthetic::ten_minute_call();
    let distinct = {
        let mut texts: Vec<&str> = call.segments().iter().map(|s| s.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        texts.len()
    };
    // Real calls rarely repeat a sentence word for word: the same call with
    // every segment's text made unique, so nothing is cached across segments.
    let mut unique = call.clone();
    if let Some(segments) = unique.segments.as_mut() {
        for (i, s) in segments.iter_mut().enumerate() {
            s.text = format!("{} ({i})", s.text);
        }
    }
    let sessions = [
        (format!("10-min call ({distinct} distinct texts)"), Arc::new(call.clone())),
        ("10-min call, 150 distinct texts".to_string(), Arc::new(unique)),
    ];
    let iterations = |cold: bool, provider: &str| match (cold, provider) {
        (true, "embeddings") => 5,
        (true, _) => 200,
        _ => 1000,
    };
    println!();
    println!("speed: one evaluation of a scripted item with one `similar` operator (median, µs)");
    println!("{:<12} {:<38} {:>12} {:>12} {:>18}", "provider", "session", "cold", "warm", "embed session");
    let mut configs = vec![("ngram", String::from("[similarity]\nprovider = \"ngram\""), None)];
    if let Some(c) = embeddings {
        let section = format!(
            "[similarity]\nprovider = \"embeddings\"\nurl = \"{}\"\nmodel = \"{}\"\ntimeout-ms = 60000",
            c.url.clone().unwrap(),
            c.model.clone().unwrap()
        );
        configs.push(("embeddings", section, Some(c.clone())));
    }
    for (provider, section, config) in configs {
        let ruleset = Ruleset::parse(&engine, &ruleset_text(&section), ".".as_ref()).unwrap();
        let entry = &ruleset.rules[0];
        let examples: Vec<String> = CHASE.iter().chain(NOT_CHASE).map(|s| s.to_string()).collect();
        let fresh = || {
            let config = config.clone().unwrap_or_default();
            Similarity::new(&config, &examples).unwrap()
        };
        for (label, session) in &sessions {
            let evaluate = |similarity: &Arc<Similarity>| {
                let started = Instant::now();
                let eval = match &entry.warm {
                    Some(pool) => pool.evaluate_with(
                        &engine,
                        &entry.module,
                        entry.id.clone(),
                        session.clone(),
                        &entry.params,
                        &entry.limits,
                        Some(similarity.clone()),
                    ),
                    None => evaluation::evaluate_with(
                        &engine,
                        &entry.module,
                        entry.id.clone(),
                        session.clone(),
                        &entry.params,
                        &entry.limits,
                        Some(similarity.clone()),
                    ),
                };
                assert!(eval.result.is_ok(), "{:?}", eval.result);
                started.elapsed().as_secs_f64() * 1e6
            };
            let (mut cold, mut embed) = (Vec::new(), Vec::new());
            for _ in 0..iterations(true, provider) {
                // A provider with its examples embedded, the session's segments not.
                let similarity = Arc::new(fresh());
                let started = Instant::now();
                similarity.prepare(session);
                let prepared = started.elapsed().as_secs_f64() * 1e6;
                embed.push(prepared);
                cold.push(prepared + evaluate(&similarity));
            }
            let similarity = Arc::new(fresh());
            similarity.prepare(session);
            let warm: Vec<f64> = (0..iterations(false, provider)).map(|_| evaluate(&similarity)).collect();
            println!(
                "{provider:<12} {label:<38} {:>12.0} {:>12.0} {:>18.0}",
                median(cold),
                median(warm),
                median(embed)
            );
        }
    }
    // For scale: the same item with the keyword list (`phrase`).
    let phrase = r#"
[[rule]]
id = "promised-chase"
module = "bundled:script"
[rule.operators.A]
kind = "phrase"
role = "agent"
any = ["马上帮您催", "帮您催一下", "我帮您催", "follow up", "chase"]
[rule.script]
text = "return !A;"
"#;
    let ruleset = Ruleset::parse(&engine, phrase, ".".as_ref()).unwrap();
    let session = Arc::new(call);
    let times: Vec<f64> = (0..1000)
        .map(|_| {
            let started = Instant::now();
            let eval = ruleset.rules[0].evaluate(&engine, session.clone());
            assert!(eval.result.is_ok());
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    println!("{:<12} {:<38} {:>12} {:>12.0}", "phrase", "10-min call (for scale)", "-", median(times));
}

fn main() {
    let embeddings = match std::env::var("CALLQA_EMBEDDINGS_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(SimilarityConfig {
            provider: ProviderKind::Embeddings,
            url: Some(url),
            model: Some(std::env::var("CALLQA_EMBEDDINGS_MODEL").unwrap_or_else(|_| "multilingual-e5-small-q4".into())),
            timeout_ms: Some(60_000),
            ..Default::default()
        }),
        None => {
            println!(
                "CALLQA_EMBEDDINGS_URL is not set: the embeddings rows are left out (source scripts/test-servers.sh)"
            );
            None
        }
    };
    quality(embeddings.as_ref());
    if std::env::var("CALLQA_BENCH_QUALITY_ONLY").is_err() {
        speed(embeddings.as_ref());
    }
}
