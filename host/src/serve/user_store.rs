//! People: the users `callqa users` adds, and `callqa serve` logs in
//! (`POST /v1/login`) or lets act through their tokens.
//!
//! The file (default `<data-dir>/users.json`, mode 0600) holds, per user,
//! the login name, the role (`admin`, `reviewer`, `agent`: the machine roles
//! stay with tokens), for an agent the Amazon Connect agent id their sheets
//! carry, for a reviewer the teams they review, whether the user is
//! disabled, when they were added, and their password as an argon2id PHC
//! string.
//!
//! Unlike a token's secret, a password is chosen by a person and can be
//! guessed, so it gets a memory-hard hash (argon2id, the crate's default
//! parameters: 19 MiB, 2 passes) that makes each guess against a stolen
//! file cost real memory and time. The same cost is paid per login
//! attempt, which is why the server bounds how many verifications run at
//! once and throttles failures (`login_routes.rs`).
//!
//! Like the tokens file, the server re-reads this file when it changes, so
//! `callqa users disable NAME` shuts the user out on their next request
//! (the server looks the user up on every one), and a file that becomes
//! invalid leaves the last good contents in force.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::Engine;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::role::Role;
use super::token_store::{locked, random_bytes, Stamp};

const FILE_VERSION: u32 = 1;
const MAX_NAME_CHARS: usize = 64;
const MAX_FIELD_CHARS: usize = 256;
/// Long enough that guessing is hopeless even for a fast hash; argon2 is
/// the second line.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Bounds the work a login body can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// One user as the file holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The login name, unique in the file.
    pub name: String,
    pub role: Role,
    /// For an agent: the Amazon Connect agent id (or username) their
    /// sheets carry; they see those sheets and no others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// For a reviewer: the levels of the agent hierarchy (`Team B`) whose
    /// sheets they see; none means every team.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    /// RFC 3339, UTC.
    pub created: String,
    /// argon2id, PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub password_hash: String,
}

/// Unknown fields are refused for the reason the tokens file refuses them:
/// a later field may restrict a user, and an older server must not drop it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    version: u32,
    users: Vec<UserRecord>,
}

/// What `callqa users add` asks for, besides the password.
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub agent_id: Option<String>,
    pub teams: Vec<String>,
}

/// The users in `path`; none when the file does not exist.
pub fn load(path: &Path) -> anyhow::Result<Vec<UserRecord>> {
    match fs::read(path) {
        Ok(bytes) => parse(path, &bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read the users file {}", path.display())),
    }
}

/// The user `name` in `path`.
pub fn find(path: &Path, name: &str) -> anyhow::Result<UserRecord> {
    load(path)?.into_iter().find(|u| u.name == name).ok_or_else(|| no_such_user(path, name))
}

/// Adds a user to the file (created when absent).
pub fn add(path: &Path, new: NewUser, password: &str) -> anyhow::Result<UserRecord> {
    check_new_user(&new)?;
    check_password(&new.name, password)?;
    // Hashed before the lock: it takes a while, and holds nothing.
    let password_hash = hash_password(password)?;
    edit(path, |users| {
        if users.iter().any(|u| u.name == new.name) {
            bail!(
                "a user named `{}` exists already in {}; pick another name, or change theirs with `callqa users \
                 passwd`, `disable` or `enable`",
                new.name,
                path.display()
            );
        }
        let record = UserRecord {
            name: new.name,
            role: new.role,
            agent_id: new.agent_id,
            teams: new.teams,
            disabled: false,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            password_hash,
        };
        users.push(record.clone());
        Ok(record)
    })
}

/// Disables or enables `name`; a running server refuses a disabled user's
/// session and tokens from their next request.
pub fn set_disabled(path: &Path, name: &str, disabled: bool) -> anyhow::Result<UserRecord> {
    edit(path, |users| {
        let user = users.iter_mut().find(|u| u.name == name).ok_or_else(|| no_such_user(path, name))?;
        user.disabled = disabled;
        Ok(user.clone())
    })
}

/// Sets `name`'s password. Their sessions end with it: a session cookie is
/// signed over the password hash (`web_session.rs`).
pub fn set_password(path: &Path, name: &str, password: &str) -> anyhow::Result<UserRecord> {
    check_password(name, password)?;
    let password_hash = hash_password(password)?;
    edit(path, |users| {
        let user = users.iter_mut().find(|u| u.name == name).ok_or_else(|| no_such_user(path, name))?;
        user.password_hash = password_hash;
        Ok(user.clone())
    })
}

fn no_such_user(path: &Path, name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no user named `{name}` in {}; `callqa users list` shows them (with the same --data-dir or --users as \
         when they were added)",
        path.display()
    )
}

/// argon2id with the crate's defaults and a fresh random salt, as a PHC
/// string (which records the parameters, so raising them later keeps old
/// hashes verifiable).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// Whether `password` is the one `phc` was made from. Slow on purpose
/// (tens of milliseconds): call it from a blocking thread.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// A password nobody has to remember typing: 144 random bits, as 24
/// base64url characters.
pub fn generate_password() -> anyhow::Result<String> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

/// Length is what makes a password hard to guess; composition rules mostly
/// make it hard to remember, so there are none.
pub fn check_password(name: &str, password: &str) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!(
            "the password is shorter than {MIN_PASSWORD_CHARS} characters; a passphrase of a few words is long \
             enough, or leave it to `--generate-password`"
        );
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!("the password is longer than {MAX_PASSWORD_BYTES} bytes");
    }
    if password == name {
        bail!("the password must not be the user name");
    }
    if password.chars().any(char::is_control) {
        bail!("the password must not contain control characters (a stray newline or tab?)");
    }
    Ok(())
}

/// A login name: letters, digits, `.`, `_`, `-`, `@`, starting with a
/// letter or digit. Narrow on purpose: it appears in the session cookie
/// and in audit records, and needs no quoting in either.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        bail!("a user name has 1 to {MAX_NAME_CHARS} characters, not {}", name.chars().count());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        bail!(
            "the user name `{}` is not usable: use letters, digits, `.`, `_`, `-` and `@`, starting with a letter \
             or digit (`maria.lopez`, `agent-0042`)",
            name.escape_debug()
        );
    }
    Ok(())
}

fn check_text(what: &str, text: &str) -> anyhow::Result<()> {
    if text.trim().is_empty() {
        bail!("{what} must not be empty");
    }
    if text.chars().count() > MAX_FIELD_CHARS {
        bail!("{what} is longer than {MAX_FIELD_CHARS} characters");
    }
    if text.chars().any(char::is_control) {
        bail!("{what} must not contain control characters");
    }
    Ok(())
}

/// What each role needs, and refuses what it would ignore (a team on an
/// agent would look like a restriction that is not one).
fn check_new_user(user: &NewUser) -> anyhow::Result<()> {
    check_name(&user.name)?;
    check_fields(user.role, user.agent_id.as_deref(), &user.teams)
}

fn check_fields(role: Role, agent_id: Option<&str>, teams: &[String]) -> anyhow::Result<()> {
    if !role.for_people() {
        bail!(
            "the role {role} is for machines: create a token with `callqa tokens create --name NAME --role {role}`; \
             users are admin, reviewer or agent"
        );
    }
    match (role, agent_id) {
        (Role::Agent, None) => bail!(
            "an agent needs --agent-id: the Amazon Connect agent id (or username) their sheets carry, so they see \
             their own sheets"
        ),
        (Role::Agent, Some(id)) => check_text("--agent-id", id)?,
        (_, Some(_)) => bail!("--agent-id is for users with the role agent"),
        (_, None) => {}
    }
    if !teams.is_empty() && role != Role::Reviewer {
        bail!("--team is for reviewers (the teams whose sheets they see); an admin sees every team");
    }
    for team in teams {
        check_text("--team", team)?;
    }
    Ok(())
}

/// Reads, changes and writes the file under the same lock `callqa tokens`
/// uses for its file, so two `callqa users` at once keep both changes.
fn edit<T>(path: &Path, change: impl FnOnce(&mut Vec<UserRecord>) -> anyhow::Result<T>) -> anyhow::Result<T> {
    locked(path, || {
        let mut users = load(path)?;
        let result = change(&mut users)?;
        let mut text = serde_json::to_string_pretty(&UserFile { version: FILE_VERSION, users })?;
        text.push('\n');
        crate::atomic_write::write_private_atomically(path, text.as_bytes())?;
        Ok(result)
    })
}

fn parse(path: &Path, bytes: &[u8]) -> anyhow::Result<Vec<UserRecord>> {
    let file: UserFile = serde_json::from_slice(bytes).with_context(|| {
        format!("{} is not a valid users file; fix it, or move it aside and add the users again", path.display())
    })?;
    if file.version != FILE_VERSION {
        bail!(
            "{} is version {} of the users file; this callqa reads version {FILE_VERSION}",
            path.display(),
            file.version
        );
    }
    let mut names = std::collections::HashSet::new();
    for user in &file.users {
        let problem =
            |e: anyhow::Error| anyhow::anyhow!("{}: user `{}`: {e:#}", path.display(), user.name.escape_debug());
        check_name(&user.name).map_err(problem)?;
        if !names.insert(user.name.as_str()) {
            bail!("{}: the name `{}` is used by two users", path.display(), user.name);
        }
        check_fields(user.role, user.agent_id.as_deref(), &user.teams).map_err(problem)?;
        if PasswordHash::new(&user.password_hash).is_err() {
            bail!(
                "{}: user `{}` has no valid password_hash (a PHC string); set one with `callqa users passwd`",
                path.display(),
                user.name
            );
        }
    }
    Ok(file.users)
}

/// The server's view of the users file, kept current.
pub struct UserStore {
    path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    /// The file as last looked at; `None` when it did not exist.
    stamp: Option<Stamp>,
    by_name: HashMap<String, Arc<UserRecord>>,
    /// The last `stat` failed for another reason than absence (logged once).
    stat_failing: bool,
}

fn index(users: Vec<UserRecord>) -> HashMap<String, Arc<UserRecord>> {
    users.into_iter().map(|u| (u.name.clone(), Arc::new(u))).collect()
}

impl UserStore {
    /// Reads `path` once. A missing file is no error (machines still use
    /// tokens; nobody can log in until `callqa users add`); an invalid one
    /// is, so a mistake is seen at start rather than as failed logins.
    pub fn open(path: PathBuf) -> anyhow::Result<UserStore> {
        let (stamp, users) = match fs::metadata(&path) {
            Ok(meta) => {
                warn_if_open_to_others(&path, &meta);
                (Some(Stamp::of(&meta)), load(&path)?)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => (None, Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read the users file {}", path.display())),
        };
        tracing::info!(users = %path.display(), count = users.len(), "users loaded");
        let state = Mutex::new(Loaded { stamp, by_name: index(users), stat_failing: false });
        Ok(UserStore { path, state })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The user `name` as the file says now (disabled ones included: the
    /// caller decides what that means).
    pub fn get(&self, name: &str) -> Option<Arc<UserRecord>> {
        self.refresh();
        self.state.lock().by_name.get(name).cloned()
    }

    /// Re-reads the file if it changed; see `TokenStore::refresh` for why
    /// on the async worker.
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
                state.stamp = Some(stamp);
                match load(&self.path) {
                    Ok(users) => {
                        tracing::info!(users = %self.path.display(), count = users.len(), "users file changed: reloaded");
                        warn_if_open_to_others(&self.path, &meta);
                        state.by_name = index(users);
                    }
                    Err(err) => tracing::error!(
                        "{err:#}; the previous {} users stay in force until the file is fixed",
                        state.by_name.len()
                    ),
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                state.stat_failing = false;
                if state.stamp.take().is_some() && !state.by_name.is_empty() {
                    tracing::warn!(
                        users = %self.path.display(),
                        "the users file was removed: nobody can log in until `callqa users add`"
                    );
                }
                state.by_name.clear();
            }
            Err(e) => {
                if !state.stat_failing {
                    tracing::error!(
                        "cannot read the users file {}: {e}; the previous {} users stay in force",
                        self.path.display(),
                        state.by_name.len()
                    );
                }
                state.stat_failing = true;
            }
        }
    }
}

/// Anyone who can write the file can make themselves an admin; anyone who
/// can read it can try guesses offline.
fn warn_if_open_to_others(path: &Path, meta: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                users = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the users file is open to other users (password hashes, and who is admin); chmod 600 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

impl UserStore {
    /// Whether someone other than `name` may resolve disputes (an enabled
    /// reviewer or admin): then a reviewer does not resolve a dispute of
    /// their own verdict.
    pub fn others_may_resolve(&self, name: &str) -> bool {
        self.refresh();
        self.state
            .lock()
            .by_name
            .values()
            .any(|u| u.name != name && !u.disabled && matches!(u.role, Role::Reviewer | Role::Admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewer(name: &str) -> NewUser {
        NewUser { name: name.into(), role: Role::Reviewer, agent_id: None, teams: vec!["Team B".into()] }
    }

    #[test]
    fn add_disable_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/users.json");
        let store = UserStore::open(path.clone()).unwrap();
        assert!(store.get("maria").is_none());

        let added = add(&path, reviewer("maria"), "correct horse battery").unwrap();
        assert!(added.password_hash.starts_with("$argon2id$"), "{}", added.password_hash);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("correct horse"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let seen = store.get("maria").unwrap();
        assert_eq!(seen.teams, vec!["Team B".to_owned()]);
        assert!(verify_password(&seen.password_hash, "correct horse battery"));
        assert!(!verify_password(&seen.password_hash, "correct horse battery "));

        assert!(add(&path, reviewer("maria"), "another long password").is_err(), "a second maria");
        set_disabled(&path, "maria", true).unwrap();
        assert!(store.get("maria").unwrap().disabled);
        set_password(&path, "maria", "a new long passphrase").unwrap();
        let changed = store.get("maria").unwrap();
        assert!(verify_password(&changed.password_hash, "a new long passphrase"));
        assert!(set_disabled(&path, "nobody", true).unwrap_err().to_string().contains("callqa users list"));
    }

    #[test]
    fn what_each_role_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let pw = "long enough password";
        let agent = |id: Option<&str>| NewUser {
            name: "agent-7".into(),
            role: Role::Agent,
            agent_id: id.map(Into::into),
            teams: Vec::new(),
        };
        assert!(add(&path, agent(None), pw).unwrap_err().to_string().contains("--agent-id"));
        let machine = NewUser { name: "bot".into(), role: Role::Ingest, agent_id: None, teams: Vec::new() };
        assert!(add(&path, machine, pw).unwrap_err().to_string().contains("callqa tokens create"));
        let admin_with_team =
            NewUser { name: "root".into(), role: Role::Admin, agent_id: None, teams: vec!["Team B".into()] };
        assert!(add(&path, admin_with_team, pw).is_err());
        for name in ["", "-x", "a b", "a;b", "ä", &"x".repeat(65)] {
            assert!(add(&path, reviewer(name), pw).is_err(), "{name:?}");
        }
        assert!(add(&path, reviewer("short"), "too short").is_err());
        assert!(add(&path, reviewer("same.as.name"), "same.as.name").is_err());
        assert!(!path.exists(), "a refused user wrote the file");
        add(&path, agent(Some("maria.lopez")), pw).unwrap();
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_users() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        add(&path, reviewer("maria"), "correct horse battery").unwrap();
        let store = UserStore::open(path.clone()).unwrap();
        fs::write(&path, b"{ not json").unwrap();
        assert!(store.get("maria").is_some());
        fs::remove_file(&path).unwrap();
        assert!(store.get("maria").is_none());
    }
}
