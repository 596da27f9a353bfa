//! Browser sessions: the `callqa_session` cookie `POST /v1/login` sets,
//! and the CSRF token that goes with it.
//!
//! The cookie's value is `NAME.EXPIRES.MAC`: the user name, the expiry in
//! Unix seconds, and HMAC-SHA256 (unpadded base64url) over both and the
//! user's password hash, keyed with `session.key` in the data directory.
//! Nothing is stored per session, so sessions survive a restart and work
//! on every `serve` sharing the data directory. What a stateless cookie
//! cannot carry is checked on each request instead: the user is looked up
//! (a disabled or removed user is refused at once), and the MAC covers the
//! password hash, so `callqa users passwd` ends every session of that
//! user. `POST /v1/logout` ends a session in this process's memory as
//! well as in the browser.
//!
//! A browser sends the cookie with any request to this server, including
//! one a page of another site makes it send. Such a page cannot read our
//! responses, though, so a value it cannot know guards each write: the
//! CSRF token, HMAC of the cookie value under the same key, which the
//! login answer and `GET /v1/me` give to our own pages and a cookie-
//! authenticated write must echo in `X-CSRF-Token`. (SameSite=Strict and
//! `auth::refuse_cross_site` stop the same attack; the token does not rely
//! on the browser honouring either.)

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use sha2_hmac::Sha256;
use subtle::ConstantTimeEq;

use super::user_store::{UserRecord, UserStore};

pub const COOKIE_NAME: &str = "callqa_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const KEY_FILE: &str = "session.key";
/// Sessions ended by logout remembered at once; past it the oldest to
/// expire is forgotten first.
const MAX_ENDED: usize = 100_000;

type HmacSha256 = Hmac<Sha256>;

/// A session just begun.
pub struct Issued {
    /// The cookie's value.
    pub value: String,
    /// Unix seconds.
    pub expires: i64,
    pub csrf_token: String,
}

/// Why a cookie did not authenticate.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of ours, altered, for a user since removed, or from before
    /// the user's password changed: all look the same from here.
    Invalid,
    Expired,
    LoggedOut,
    Disabled,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Invalid => {
                "the session cookie is not valid here (signed by another server's session.key, or the password \
                 changed since): log in again with POST /v1/login"
            }
            Refusal::Expired => "the session expired: log in again with POST /v1/login",
            Refusal::LoggedOut => "the session ended at logout: log in again with POST /v1/login",
            Refusal::Disabled => "this user is disabled; an admin enables them with `callqa users enable NAME`",
        }
    }
}

pub struct WebSessions {
    key: [u8; 32],
    lifetime: Duration,
    secure: bool,
    /// MACs of sessions ended by logout, with their expiry: a copy of the
    /// cookie kept elsewhere stops working too (in this process).
    ended: Mutex<HashMap<[u8; 32], i64>>,
}

impl WebSessions {
    /// The key in `data_dir/session.key`, created on first use.
    pub fn open(data_dir: &Path, lifetime: Duration, secure: bool) -> anyhow::Result<WebSessions> {
        let key = load_or_create_key(&data_dir.join(KEY_FILE))?;
        Ok(WebSessions { key, lifetime, secure, ended: Mutex::new(HashMap::new()) })
    }

    #[cfg(test)]
    fn with_key(key: [u8; 32], lifetime: Duration) -> WebSessions {
        WebSessions { key, lifetime, secure: true, ended: Mutex::new(HashMap::new()) }
    }

    pub fn issue(&self, user: &UserRecord) -> Issued {
        let expires = now_unix().saturating_add(self.lifetime.as_secs() as i64);
        let mac = self.session_mac(&user.name, expires, &user.password_hash);
        let value = format!("{}.{expires}.{}", user.name, b64(&mac));
        let csrf_token = self.csrf_token(&value);
        Issued { value, expires, csrf_token }
    }

    /// The user a cookie value authenticates, as the users file says now.
    pub fn verify(&self, value: &str, users: &UserStore) -> Result<std::sync::Arc<UserRecord>, Refusal> {
        let (name, expires, mac) = parse(value).ok_or(Refusal::Invalid)?;
        let user = users.get(name).ok_or(Refusal::Invalid)?;
        let expected = self.session_mac(name, expires, &user.password_hash);
        if !bool::from(expected.as_slice().ct_eq(&mac)) {
            return Err(Refusal::Invalid);
        }
        if expires <= now_unix() {
            return Err(Refusal::Expired);
        }
        if self.ended.lock().contains_key(&expected) {
            return Err(Refusal::LoggedOut);
        }
        // Last, so only a genuine session learns that its user is disabled.
        if user.disabled {
            return Err(Refusal::Disabled);
        }
        Ok(user)
    }

    /// Ends a session `verify` accepted, for every copy of its cookie.
    pub fn end(&self, value: &str) {
        let Some((_, expires, mac)) = parse(value) else { return };
        let Ok(mac) = <[u8; 32]>::try_from(mac.as_slice()) else { return };
        let now = now_unix();
        let mut ended = self.ended.lock();
        if ended.len() >= MAX_ENDED {
            ended.retain(|_, until| *until > now);
        }
        if ended.len() >= MAX_ENDED {
            if let Some(soonest) = ended.iter().min_by_key(|(_, until)| **until).map(|(mac, _)| *mac) {
                ended.remove(&soonest);
            }
        }
        ended.insert(mac, expires);
    }

    /// The token a write authenticated by the session `value` must carry.
    pub fn csrf_token(&self, value: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"callqa-csrf\0");
        mac.update(value.as_bytes());
        b64(&mac.finalize().into_bytes())
    }

    /// `Set-Cookie` for a new session.
    pub fn set_cookie(&self, issued: &Issued) -> HeaderValue {
        let max_age = self.lifetime.as_secs();
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie =
            format!("{COOKIE_NAME}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}", issued.value);
        HeaderValue::from_str(&cookie).expect("user names and base64url are cookie-safe")
    }

    /// `Set-Cookie` that makes the browser drop the session.
    pub fn clear_cookie(&self) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!("{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"))
            .expect("a constant cookie")
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    fn session_mac(&self, name: &str, expires: i64, password_hash: &str) -> [u8; 32] {
        let mut mac = self.mac();
        // NUL-separated, and no field may hold a NUL, so no two sessions
        // sign the same bytes.
        for part in [b"callqa-session".as_slice(), name.as_bytes(), expires.to_string().as_bytes()] {
            mac.update(part);
            mac.update(b"\0");
        }
        mac.update(password_hash.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Every `callqa_session` value the request carries: a browser may send
/// more than one (another path's, a sibling domain's), and the right one
/// need not be first.
pub fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
        .filter(|value| !value.is_empty())
}

/// Whether the request's `X-CSRF-Token` is `expected`.
pub fn csrf_matches(headers: &HeaderMap, expected: &str) -> bool {
    headers.get(CSRF_HEADER).is_some_and(|got| csrf_equal(got.as_bytes(), expected))
}

/// A token a form echoed (the workbench's pages post forms, which cannot
/// set headers) compared in constant time.
pub fn csrf_equal(got: &[u8], expected: &str) -> bool {
    bool::from(got.ct_eq(expected.as_bytes()))
}

fn parse(value: &str) -> Option<(&str, i64, Vec<u8>)> {
    // From the right: a user name may contain dots, the other two cannot.
    let mut parts = value.rsplitn(3, '.');
    let mac = parts.next()?;
    let expires = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac).ok()?;
    (mac.len() == 32 && !name.is_empty()).then_some((name, expires, mac))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Reads the key, or makes one: written to a temporary file and linked
/// into place, so two servers starting at once on one data directory end
/// up with the same key (the second link fails and it reads the first's).
fn load_or_create_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    match fs::read_to_string(path) {
        Ok(text) => return parse_key(path, &text),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read the session key {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("the system's random number generator failed: {e}"))?;
    let temporary = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
        file.sync_all()
    };
    write().with_context(|| format!("cannot write the session key {}", temporary.display()))?;
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                crate::atomic_write::sync_dir(dir)?;
            }
            tracing::info!(key = %path.display(), "created the session key (sessions are signed with it)");
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            parse_key(path, &fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        Err(e) => Err(e).with_context(|| format!("cannot create the session key {}", path.display())),
    }
}

fn parse_key(path: &Path, text: &str) -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut key).is_err() {
        bail!(
            "{} is not a session key (64 hex digits); delete it and restart to make a new one (everyone logs in \
             again)",
            path.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    key = %path.display(),
                    "the session key is open to other users, who could forge any user's session; chmod 600 it"
                );
            }
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::role::Role;
    use crate::serve::user_store::{self, NewUser};

    fn setup() -> (tempfile::TempDir, UserStore, WebSessions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let user = NewUser { name: "maria.lopez".into(), role: Role::Admin, agent_id: None, teams: Vec::new() };
        user_store::add(&path, user, "correct horse battery").unwrap();
        let store = UserStore::open(path).unwrap();
        (dir, store, WebSessions::with_key([7; 32], Duration::from_secs(3600)))
    }

    #[test]
    fn a_session_verifies_until_altered_disabled_or_ended() {
        let (dir, users, sessions) = setup();
        let user = users.get("maria.lopez").unwrap();
        let issued = sessions.issue(&user);
        assert!(issued.value.starts_with("maria.lopez."), "{}", issued.value);
        assert_eq!(sessions.verify(&issued.value, &users).unwrap().name, "maria.lopez");
        assert_eq!(issued.csrf_token, sessions.csrf_token(&issued.value));

        let later = issued.value.replacen(&issued.expires.to_string(), &(issued.expires + 1).to_string(), 1);
        assert_eq!(sessions.verify(&later, &users).unwrap_err(), Refusal::Invalid);
        let other_key = WebSessions::with_key([8; 32], Duration::from_secs(3600));
        assert_eq!(other_key.verify(&issued.value, &users).unwrap_err(), Refusal::Invalid);
        for junk in ["", "maria.lopez", "x.1.", "..", "maria.lopez.9999999999.AAAA"] {
            assert_eq!(sessions.verify(junk, &users).unwrap_err(), Refusal::Invalid, "{junk:?}");
        }

        let path = dir.path().join("users.json");
        user_store::set_disabled(&path, "maria.lopez", true).unwrap();
        assert_eq!(sessions.verify(&issued.value, &users).unwrap_err(), Refusal::Disabled);
        user_store::set_disabled(&path, "maria.lopez", false).unwrap();
        assert!(sessions.verify(&issued.value, &users).is_ok());

        sessions.end(&issued.value);
        assert_eq!(sessions.verify(&issued.value, &users).unwrap_err(), Refusal::LoggedOut);
        let again = sessions.issue(&users.get("maria.lopez").unwrap());
        user_store::set_password(&path, "maria.lopez", "another long passphrase").unwrap();
        assert_eq!(sessions.verify(&again.value, &users).unwrap_err(), Refusal::Invalid, "passwd ends sessions");
    }

    #[test]
    fn an_expired_session_is_refused() {
        let (_dir, users, _) = setup();
        let sessions = WebSessions::with_key([7; 32], Duration::ZERO);
        let issued = sessions.issue(&users.get("maria.lopez").unwrap());
        assert_eq!(sessions.verify(&issued.value, &users).unwrap_err(), Refusal::Expired);
    }

    #[test]
    fn cookies_and_the_key_file() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; callqa_session=a.1.b"));
        headers.append(header::COOKIE, HeaderValue::from_static("callqa_session=c.2.d;callqa_sessionx=no"));
        assert_eq!(cookie_values(&headers).collect::<Vec<_>>(), vec!["a.1.b", "c.2.d"]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/session.key");
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), key, "the key survives a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(fs::read_dir(dir.path().join("data")).unwrap().count(), 1, "a temporary file was left");
        fs::write(&path, "short").unwrap();
        assert!(load_or_create_key(&path).unwrap_err().to_string().contains("delete it"));
    }
}
