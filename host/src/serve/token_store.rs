//! Machine tokens: created and revoked by `callqa tokens`, checked by
//! `callqa serve` on every protected request. A token may also act for a
//! person (`callqa users token NAME`, for their scripts): it then names the
//! user, and the server gives it that user's current role and refuses it
//! while the user is disabled (`serve/user_store.rs`).
//!
//! The file (default `<data-dir>/tokens.json`, mode 0600) holds, per token,
//! a public id, a name, a role, when it was created and the SHA-256 of the
//! secret; never the secret. The secret is `cqa_` and 32 random bytes in
//! unpadded base64url, shown once when created.
//!
//! A plain SHA-256 is the right hash here, not a slow password hash:
//! argon2 and its kin make guessing a *human-chosen* password expensive, but
//! a secret of 256 random bits cannot be guessed at any speed, so a stolen
//! file gives nothing, and a slow hash would cost milliseconds on every
//! request for no gain. It also makes the look-up a map access by digest:
//! what timing reveals is about the digest of the caller's guess, which
//! tells nothing about any secret.
//!
//! The server re-reads the file when it changes (one `stat` per
//! authenticated request), so `callqa tokens revoke` takes effect on the
//! next request without a restart. A file that becomes unreadable or
//! invalid leaves the last good contents in force (logged), so a botched
//! hand edit does not lock every client out; a file deleted revokes all.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context};
use base64::Engine;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::role::Role;

/// What every secret starts with, so one found in a log or a repository is
/// recognisable (secret scanners match on such prefixes).
pub const SECRET_PREFIX: &str = "cqa_";

const FILE_VERSION: u32 = 1;
const MAX_NAME_CHARS: usize = 64;

/// One token as the file holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Public and short, for `callqa tokens revoke ID` and the logs.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// RFC 3339, UTC.
    pub created: String,
    /// SHA-256 of the secret, lowercase hex.
    pub sha256: String,
    /// The user the token acts for; absent for a machine's token (and in
    /// every file written before users existed, which still load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Unknown fields are refused rather than ignored: a later version may add
/// a restriction (an expiry, say) that an older server must not silently
/// drop.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// A token just created: its record, and the secret that exists nowhere
/// else.
pub struct NewToken {
    pub record: TokenRecord,
    pub secret: String,
}

/// The tokens in `path`; none when the file does not exist.
pub fn load(path: &Path) -> anyhow::Result<Vec<TokenRecord>> {
    match fs::read(path) {
        Ok(bytes) => parse(path, &bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read the tokens file {}", path.display())),
    }
}

/// Adds a machine's token with a fresh secret to the file (created when
/// absent).
pub fn create(path: &Path, name: &str, role: Role) -> anyhow::Result<NewToken> {
    if matches!(role, Role::Reviewer | Role::Agent) {
        // A reviewer or agent token without a user would see every team's
        // sheets, or none: what it may see comes from the user.
        bail!(
            "the role {role} is held by people: add the user with `callqa users add NAME --role {role}`, then \
             `callqa users token NAME` gives their scripts a token"
        );
    }
    insert(path, name, role, None)
}

/// Adds a token that acts for `user` (whose role it records, for `callqa
/// tokens list`; the server uses the user's role at each request).
pub fn create_for_user(path: &Path, name: &str, user: &str, role: Role) -> anyhow::Result<NewToken> {
    insert(path, name, role, Some(user))
}

fn insert(path: &Path, name: &str, role: Role, user: Option<&str>) -> anyhow::Result<NewToken> {
    check_name(name)?;
    edit(path, |tokens| {
        let id = loop {
            let id = hex::encode(random_bytes::<4>()?);
            if !tokens.iter().any(|t| t.id == id) {
                break id;
            }
        };
        let secret = format!(
            "{SECRET_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        let record = TokenRecord {
            id,
            name: name.to_owned(),
            role,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            user: user.map(str::to_owned),
        };
        tokens.push(record.clone());
        Ok(NewToken { record, secret })
    })
}

/// Removes the token `id` from the file and returns what it was.
pub fn revoke(path: &Path, id: &str) -> anyhow::Result<TokenRecord> {
    edit(path, |tokens| {
        let Some(at) = tokens.iter().position(|t| t.id == id) else {
            bail!(
                "no token with id `{id}` in {}; `callqa tokens list` shows the ids (the same --data-dir or --tokens \
                 as when it was created)",
                path.display()
            );
        };
        Ok(tokens.remove(at))
    })
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() {
        bail!("--name must not be empty: name the client that will hold the token (`firehose-transform`)");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        bail!("--name is longer than {MAX_NAME_CHARS} characters");
    }
    if name.chars().any(char::is_control) {
        bail!("--name must not contain control characters");
    }
    Ok(())
}

/// Reads, changes and writes the file under an exclusive lock, so two
/// `callqa tokens` at once cannot lose each other's change.
fn edit<T>(path: &Path, change: impl FnOnce(&mut Vec<TokenRecord>) -> anyhow::Result<T>) -> anyhow::Result<T> {
    locked(path, || {
        let mut tokens = load(path)?;
        let result = change(&mut tokens)?;
        let mut text = serde_json::to_string_pretty(&TokenFile { version: FILE_VERSION, tokens })?;
        text.push('\n');
        crate::atomic_write::write_private_atomically(path, text.as_bytes())?;
        Ok(result)
    })
}

/// Runs `work` holding an exclusive lock on `path` (a `.lock` file beside
/// it, so the lock survives the rename that replaces the file).
pub(super) fn locked<T>(path: &Path, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let lock_path = sibling(path, ".lock");
    let mut options = fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let lock = options.open(&lock_path).with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    work()
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(super) fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the system's random number generator failed: {e}"))?;
    Ok(bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> anyhow::Result<Vec<TokenRecord>> {
    let file: TokenFile = serde_json::from_slice(bytes).with_context(|| {
        format!("{} is not a valid tokens file; fix it, or move it aside and create the tokens again", path.display())
    })?;
    if file.version != FILE_VERSION {
        bail!(
            "{} is version {} of the tokens file; this callqa reads version {FILE_VERSION}",
            path.display(),
            file.version
        );
    }
    let mut ids = std::collections::HashSet::new();
    for token in &file.tokens {
        if !ids.insert(token.id.as_str()) {
            bail!("{}: the id `{}` is used by two tokens", path.display(), token.id);
        }
        if decode_digest(&token.sha256).is_none() {
            bail!("{}: token `{}` has no valid sha256 (64 hex digits)", path.display(), token.id);
        }
    }
    Ok(file.tokens)
}

fn decode_digest(text: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text, &mut digest).ok()?;
    Some(digest)
}

/// What a presented secret turned out to be.
pub enum Lookup {
    Valid(Arc<TokenRecord>),
    /// Not a token in force: never issued, revoked, or from another file.
    Unknown,
    /// The server has no tokens at all, so nothing could have matched.
    NoTokens,
}

/// The server's view of the tokens file, kept current.
pub struct TokenStore {
    path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    /// The file as last looked at; `None` when it did not exist.
    stamp: Option<Stamp>,
    by_digest: HashMap<[u8; 32], Arc<TokenRecord>>,
    /// The last `stat` failed for another reason than absence (logged once).
    stat_failing: bool,
}

/// Enough of a file's metadata to notice that it changed. The inode is in
/// it because `callqa tokens` replaces the file by a rename, which changes
/// the inode even when size and mtime (coarse on some file systems) do not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: (u64, u64),
}

impl Stamp {
    pub(super) fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let inode = (0, 0);
        Stamp { len: meta.len(), modified: meta.modified().ok(), inode }
    }
}

fn index(tokens: Vec<TokenRecord>) -> HashMap<[u8; 32], Arc<TokenRecord>> {
    tokens.into_iter().filter_map(|t| Some((decode_digest(&t.sha256)?, Arc::new(t)))).collect()
}

impl TokenStore {
    /// Reads `path` once. A missing file is no error (the server starts,
    /// refusing every protected request until a token is created); an
    /// invalid one is, so a mistake is seen at start rather than as 401s.
    pub fn open(path: PathBuf) -> anyhow::Result<TokenStore> {
        let (stamp, tokens) = match fs::metadata(&path) {
            Ok(meta) => {
                warn_if_writable_by_others(&path, &meta);
                (Some(Stamp::of(&meta)), load(&path)?)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => (None, Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read the tokens file {}", path.display())),
        };
        if tokens.is_empty() {
            tracing::warn!(
                tokens = %path.display(),
                "no tokens: POST /v1/ctr, /v1/firehose/transform, /v1/sessions/evaluate, the rules endpoints \
                 refuse every request until one is created with `callqa tokens create`"
            );
        } else {
            tracing::info!(tokens = %path.display(), count = tokens.len(), "tokens loaded");
        }
        let state = Mutex::new(Loaded { stamp, by_digest: index(tokens), stat_failing: false });
        Ok(TokenStore { path, state })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn authenticate(&self, secret: &str) -> Lookup {
        self.refresh();
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let state = self.state.lock();
        match state.by_digest.get(&digest) {
            Some(token) => Lookup::Valid(token.clone()),
            None if state.by_digest.is_empty() => Lookup::NoTokens,
            None => Lookup::Unknown,
        }
    }

    /// Re-reads the file if it changed since it was last read. Blocking
    /// file system calls on the async worker: a `stat` per request, and a
    /// read of a small file only after a change, cost less than a hop to
    /// the blocking pool.
    fn refresh(&self) {
        let seen = fs::metadata(&self.path);
        let mut state = self.state.lock();
        match seen {
            Ok(meta) => {
                state.stat_failing = false;
                let stamp = Stamp::of(&meta);
                if state.stamp == Some(stamp) {
                    return;
                }
                // Recorded even when the read fails, so a broken file is
                // logged once rather than on every request.
                state.stamp = Some(stamp);
                match load(&self.path) {
                    Ok(tokens) => {
                        let count = tokens.len();
                        tracing::info!(tokens = %self.path.display(), count, "tokens file changed: reloaded");
                        warn_if_writable_by_others(&self.path, &meta);
                        state.by_digest = index(tokens);
                    }
                    Err(err) => tracing::error!(
                        "{err:#}; the previous {} tokens stay in force until the file is fixed",
                        state.by_digest.len()
                    ),
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                state.stat_failing = false;
                if state.stamp.take().is_some() && !state.by_digest.is_empty() {
                    tracing::warn!(
                        tokens = %self.path.display(),
                        "the tokens file was removed: every token is refused until `callqa tokens create` makes \
                         a new one"
                    );
                }
                state.by_digest.clear();
            }
            Err(e) => {
                if !state.stat_failing {
                    tracing::error!(
                        "cannot read the tokens file {}: {e}; the previous {} tokens stay in force",
                        self.path.display(),
                        state.by_digest.len()
                    );
                }
                state.stat_failing = true;
            }
        }
    }
}

/// Anyone who can write the file can give themselves a token.
fn warn_if_writable_by_others(path: &Path, meta: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            tracing::warn!(
                tokens = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the tokens file is writable by other users, who could add a token; chmod 600 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_authenticate_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tokens.json");
        let store = TokenStore::open(path.clone()).unwrap();
        assert!(matches!(store.authenticate("cqa_nothing"), Lookup::NoTokens));

        let made = create(&path, "firehose", Role::Ingest).unwrap();
        assert!(made.secret.starts_with(SECRET_PREFIX));
        assert_eq!(made.secret.len(), SECRET_PREFIX.len() + 43);
        assert_eq!(made.record.id.len(), 8);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&made.secret[SECRET_PREFIX.len()..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }

        match store.authenticate(&made.secret) {
            Lookup::Valid(token) => assert_eq!(token.role, Role::Ingest),
            _ => panic!("a fresh token is refused"),
        }
        assert!(matches!(store.authenticate("cqa_wrong"), Lookup::Unknown));

        let other = create(&path, "ops", Role::Admin).unwrap();
        revoke(&path, &made.record.id).unwrap();
        assert!(matches!(store.authenticate(&made.secret), Lookup::Unknown));
        assert!(matches!(store.authenticate(&other.secret), Lookup::Valid(_)));
        assert!(revoke(&path, &made.record.id).is_err());
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let made = create(&path, "ops", Role::Admin).unwrap();
        let store = TokenStore::open(path.clone()).unwrap();
        fs::write(&path, b"{ not json").unwrap();
        assert!(matches!(store.authenticate(&made.secret), Lookup::Valid(_)));
        fs::remove_file(&path).unwrap();
        assert!(matches!(store.authenticate(&made.secret), Lookup::NoTokens));
    }

    #[test]
    fn a_file_from_before_users_loads_and_user_tokens_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let old = r#"{"version": 1, "tokens": [{"id": "0a0b0c0d", "name": "lambda", "role": "ingest",
            "created": "2026-01-01T00:00:00Z", "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}]}"#;
        fs::write(&path, old).unwrap();
        assert_eq!(load(&path).unwrap()[0].user, None);

        let made = create_for_user(&path, "alice-scripts", "alice", Role::Reviewer).unwrap();
        let tokens = load(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].user.as_deref(), Some("alice"));
        assert_eq!(tokens[1].role, Role::Reviewer);
        let store = TokenStore::open(path.clone()).unwrap();
        match store.authenticate(&made.secret) {
            Lookup::Valid(token) => assert_eq!(token.user.as_deref(), Some("alice")),
            _ => panic!("a user's token is refused"),
        }
        // A machine token never names a user, so its file stays readable
        // by a server from before users.
        assert!(!fs::read_to_string(&path).unwrap().contains("\"user\": null"));
    }

    #[test]
    fn people_roles_need_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        for role in [Role::Reviewer, Role::Agent] {
            let err = create(&path, "x", role).err().unwrap();
            assert!(format!("{err}").contains("callqa users add"), "{err}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        assert!(create(&path, " ", Role::Admin).is_err());
        assert!(create(&path, "a\nb", Role::Admin).is_err());
        assert!(!path.exists());
    }
}
