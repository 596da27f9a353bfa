//! The webhooks file (`serve --webhooks FILE`): where alerts go, with what
//! secret, and how delivery retries. Checked whole at start; a problem is
//! named with the file, the line and the field.
//!
//! ```toml
//! retry_initial = "1s"     # the first retry's ceiling; doubles per failure
//! retry_max = "10m"        # the ceiling's cap
//! timeout = "10s"          # one attempt, connect to last byte
//!
//! [[webhook]]
//! name = "qa-pager"                          # metrics label, outbox key
//! url = "https://hooks.example.com/callqa"
//! secret_env = "CALLQA_PAGER_SECRET"         # or secret = "..."
//! min_severity = "critical"                  # default "warning"
//! link_base = "https://qa.example.com/sheets/"
//! ```

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use toml::Spanned;

use super::alert::Severity;
use crate::duration::parse_duration;

/// Shorter secrets are refused: the signature is only as strong as the key.
const MIN_SECRET_BYTES: usize = 16;

/// One receiver of alerts.
#[derive(Clone)]
pub struct Webhook {
    /// Unique in the file: the outbox and the metrics know the webhook by it.
    pub name: String,
    pub url: hyper::Uri,
    pub secret: Vec<u8>,
    pub min_severity: Severity,
    /// The sheet's link is this followed by the session id.
    pub link_base: Option<String>,
}

impl std::fmt::Debug for Webhook {
    /// Never the secret: configs end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"(redacted)")
            .field("min_severity", &self.min_severity)
            .field("link_base", &self.link_base)
            .finish()
    }
}

/// The webhooks and how they are delivered to.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub webhooks: Vec<Webhook>,
    /// The backoff ceiling after the first failure (full jitter below it).
    pub retry_initial: Duration,
    /// The ceiling's cap, however many failures.
    pub retry_max: Duration,
    /// One attempt's limit, connecting included.
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    #[serde(default, rename = "webhook")]
    webhooks: Vec<Spanned<WebhookEntry>>,
    retry_initial: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookEntry {
    name: Spanned<String>,
    url: Spanned<String>,
    secret: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    min_severity: Option<Spanned<String>>,
    link_base: Option<Spanned<String>>,
}

impl WebhookSettings {
    /// Reads and checks the file; `secret_env` names are read from the
    /// process environment now, not later.
    pub fn load(path: &Path) -> anyhow::Result<WebhookSettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the webhooks file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string(), |name| std::env::var(name).ok())
    }

    /// [`Self::load`] on `text`, named `file` in messages, with `env` for
    /// the environment.
    pub fn parse(text: &str, file: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<WebhookSettings> {
        // toml's own messages name the line and column.
        let parsed: WebhooksFile =
            toml::from_str(text).with_context(|| format!("the webhooks file {file} is not valid"))?;
        let at = |span: Range<usize>| format!("{file}:{}", line_of(text, span.start));
        if parsed.webhooks.is_empty() {
            bail!("the webhooks file {file} has no [[webhook]] table: add one with name, url and secret_env");
        }
        let duration = |field: &str, value: &Option<Spanned<String>>, default: &str| -> anyhow::Result<Duration> {
            match value {
                None => Ok(parse_duration(default).expect("a valid default")),
                Some(v) => {
                    let d =
                        parse_duration(v.get_ref()).map_err(|e| anyhow::anyhow!("{}: `{field}`: {e}", at(v.span())))?;
                    anyhow::ensure!(!d.is_zero(), "{}: `{field}` must be more than 0", at(v.span()));
                    Ok(d)
                }
            }
        };
        let retry_initial = duration("retry_initial", &parsed.retry_initial, "1s")?;
        let retry_max = duration("retry_max", &parsed.retry_max, "10m")?;
        let timeout = duration("timeout", &parsed.timeout, "10s")?;
        // Past these, an alert is no longer an alert (and schedules stay
        // within what the store's instants can hold).
        for (field, value, limit) in [
            ("retry_initial", &parsed.retry_initial, Duration::from_secs(86_400)),
            ("retry_max", &parsed.retry_max, Duration::from_secs(86_400)),
            ("timeout", &parsed.timeout, Duration::from_secs(600)),
        ] {
            if let Some(v) = value {
                let d = parse_duration(v.get_ref()).unwrap_or_default();
                anyhow::ensure!(d <= limit, "{}: `{field}` must be at most {limit:?}", at(v.span()));
            }
        }
        if retry_max < retry_initial {
            let span = parsed.retry_max.as_ref().or(parsed.retry_initial.as_ref()).map_or(0..0, Spanned::span);
            bail!("{}: `retry_max` ({retry_max:?}) is less than `retry_initial` ({retry_initial:?})", at(span));
        }
        let mut webhooks: Vec<Webhook> = Vec::with_capacity(parsed.webhooks.len());
        for entry in &parsed.webhooks {
            let table = at(entry.span());
            let e = entry.get_ref();
            let name = e.name.get_ref();
            let field = |span: Range<usize>, field: &str| format!("{}: webhook `{name}`: `{field}`", at(span));
            if name.is_empty()
                || name.len() > 64
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                bail!(
                    "{}: webhook `name` {name:?} must be 1 to 64 letters, digits, `-`, `_` or `.` (it labels metrics)",
                    at(e.name.span())
                );
            }
            if let Some(first) = webhooks.iter().find(|w| w.name == *name) {
                bail!("{}: webhook `name` {:?} is used twice; names must be unique", at(e.name.span()), first.name);
            }
            let url: hyper::Uri = e.url.get_ref().parse().map_err(|err| {
                anyhow::anyhow!("{} {:?} is not a URL: {err}", field(e.url.span(), "url"), e.url.get_ref())
            })?;
            if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
                bail!(
                    "{} {:?} must be an http:// or https:// URL with a host",
                    field(e.url.span(), "url"),
                    e.url.get_ref()
                );
            }
            let secret = match (&e.secret, &e.secret_env) {
                (Some(_), Some(v)) => {
                    bail!("{} and `secret` are both given: keep one", field(v.span(), "secret_env"))
                }
                (None, None) => bail!(
                    "{}: webhook `{name}` has no secret: add secret_env = \"NAME\" (an environment variable holding it) or \
                     secret = \"...\"",
                    table
                ),
                (Some(s), None) => (s.get_ref().clone(), field(s.span(), "secret")),
                (None, Some(v)) => {
                    let value = env(v.get_ref()).filter(|s| !s.is_empty()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{}: the environment variable {} is not set (or empty)",
                            field(v.span(), "secret_env"),
                            v.get_ref()
                        )
                    })?;
                    (value, field(v.span(), "secret_env"))
                }
            };
            let (secret, where_) = secret;
            if secret.len() < MIN_SECRET_BYTES {
                bail!(
                    "{where_}: the secret has {} bytes; use at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
                    secret.len()
                );
            }
            let min_severity = match &e.min_severity {
                None => Severity::Warning,
                Some(v) => Severity::parse(v.get_ref()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} {:?} is not \"warning\" or \"critical\"",
                        field(v.span(), "min_severity"),
                        v.get_ref()
                    )
                })?,
            };
            let link_base = match &e.link_base {
                None => None,
                Some(v) if v.get_ref().starts_with("https://") || v.get_ref().starts_with("http://") => {
                    Some(v.get_ref().clone())
                }
                Some(v) => bail!(
                    "{} {:?} must start with https:// or http:// (the session id is appended)",
                    field(v.span(), "link_base"),
                    v.get_ref()
                ),
            };
            webhooks.push(Webhook { name: name.clone(), url, secret: secret.into_bytes(), min_severity, link_base });
        }
        Ok(WebhookSettings { webhooks, retry_initial, retry_max, timeout })
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123";

    fn parse(text: &str) -> anyhow::Result<WebhookSettings> {
        WebhookSettings::parse(text, "hooks.toml", |name| (name == "HOOK_SECRET").then(|| SECRET.to_owned()))
    }

    fn refused(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn a_good_file_with_defaults() {
        let s = parse(
            "[[webhook]]\nname = \"ops\"\nurl = \"https://hooks.example.com/a\"\nsecret_env = \"HOOK_SECRET\"\n\n\
             [[webhook]]\nname = \"pager\"\nurl = \"http://127.0.0.1:9/p\"\nsecret = \"an inline secret of some length\"\n\
             min_severity = \"critical\"\nlink_base = \"https://qa.example.com/sheets/\"\n",
        )
        .unwrap();
        assert_eq!(s.webhooks.len(), 2);
        assert_eq!(s.webhooks[0].secret, SECRET.as_bytes());
        assert_eq!(s.webhooks[0].min_severity, Severity::Warning);
        assert_eq!(s.webhooks[1].min_severity, Severity::Critical);
        assert_eq!(s.webhooks[1].link_base.as_deref(), Some("https://qa.example.com/sheets/"));
        assert_eq!(
            (s.retry_initial, s.retry_max, s.timeout),
            (Duration::from_secs(1), Duration::from_secs(600), Duration::from_secs(10))
        );
        assert!(!format!("{:?}", s.webhooks[0]).contains(SECRET), "Debug never shows the secret");
    }

    #[test]
    fn problems_are_named_with_file_line_and_field() {
        let head = "[[webhook]]\nname = \"ops\"\nurl = \"https://h.example.com/\"\n";
        let err = refused(&format!("{head}secret_env = \"HOOK_SECRET\"\nmin_severity = \"urgent\"\n"));
        assert!(err.contains("hooks.toml:5: webhook `ops`: `min_severity` \"urgent\""), "{err}");
        let err = refused(&format!("{head}secret_env = \"NOT_SET\"\n"));
        assert!(
            err.contains("hooks.toml:4: webhook `ops`: `secret_env`: the environment variable NOT_SET is not set"),
            "{err}"
        );
        let err = refused(&format!("{head}secret = \"short\"\n"));
        assert!(err.contains("hooks.toml:4: webhook `ops`: `secret`: the secret has 5 bytes"), "{err}");
        let err = refused(&format!("{head}secret = \"{SECRET}\"\nsecret_env = \"HOOK_SECRET\"\n"));
        assert!(err.contains("hooks.toml:5: webhook `ops`: `secret_env` and `secret` are both given"), "{err}");
        let err = refused(head);
        assert!(err.contains("hooks.toml:1: webhook `ops` has no secret"), "{err}");
        let err =
            refused("[[webhook]]\nname = \"ops\"\nurl = \"ftp://h.example.com/\"\nsecret_env = \"HOOK_SECRET\"\n");
        assert!(
            err.contains(
                "hooks.toml:3: webhook `ops`: `url` \"ftp://h.example.com/\" must be an http:// or https:// URL"
            ),
            "{err}"
        );
        let err = refused(&format!("{head}secret_env = \"HOOK_SECRET\"\n{head}secret_env = \"HOOK_SECRET\"\n"));
        assert!(err.contains("hooks.toml:6: webhook `name` \"ops\" is used twice"), "{err}");
        let err = refused(&format!("{head}secret_env = \"HOOK_SECRET\"\nlink_base = \"qa.example.com\"\n"));
        assert!(err.contains("hooks.toml:5: webhook `ops`: `link_base`"), "{err}");
        let err = refused(&format!("timeout = \"1h\"\n{head}secret_env = \"HOOK_SECRET\"\n"));
        assert!(err.contains("hooks.toml:1: `timeout` must be at most 600s"), "{err}");
        let err = refused(&format!("retry_max = \"forever\"\n{head}secret_env = \"HOOK_SECRET\"\n"));
        assert!(err.contains("hooks.toml:1: `retry_max`"), "{err}");
        let err = refused(&format!("retry_initial = \"1m\"\nretry_max = \"1s\"\n{head}secret_env = \"HOOK_SECRET\"\n"));
        assert!(err.contains("hooks.toml:2: `retry_max` (1s) is less than `retry_initial` (60s)"), "{err}");
        let err = refused("[[webhook]]\nname = \"bad name\"\nurl = \"https://h.example.com/\"\n");
        assert!(err.contains("hooks.toml:2: webhook `name` \"bad name\""), "{err}");
    }

    #[test]
    fn toml_errors_name_the_line() {
        let err = refused("[[webhook]]\nname = \"ops\"\nsecret_env = \"HOOK_SECRET\"\n");
        assert!(
            err.contains("the webhooks file hooks.toml is not valid")
                && err.contains("line 1")
                && err.contains("missing field `url`"),
            "{err}"
        );
        let err = refused("[[webhook]]\nname = \"ops\"\nurl = \"https://h.example.com/\"\nsecret_env = \"HOOK_SECRET\"\nmin_severty = \"critical\"\n");
        assert!(err.contains("line 5") && err.contains("unknown field `min_severty`"), "{err}");
        let err = refused("# nothing\n");
        assert!(err.contains("has no [[webhook]] table"), "{err}");
    }
}
