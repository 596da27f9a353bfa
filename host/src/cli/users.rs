//! `callqa users`: the people who log in to `callqa serve` (see
//! `serve/user_store.rs` for the file and the password hashing).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::data_dir::default_data_dir;
use crate::serve::role::Role;
use crate::serve::token_store;
use crate::serve::user_store::{self, NewUser, UserRecord};

const AFTER_HELP: &str = "\
Roles for people:
  admin      everything: rules, users, every sheet
  reviewer   the sheets of their teams (--team, repeatable; none: all teams):
             review items, add manual items, resolve disputes, assign
  agent      their own sheets only (--agent-id: the Amazon Connect agent id
             or username the sheets carry): read, acknowledge, dispute
Machines (ingest, evaluate) use `callqa tokens` instead. Every role may read
GET /v1/rules.

People log in with POST /v1/login (a session cookie, 12 hours by default);
their scripts use a token that acts for them (`callqa users token NAME`),
which stops working when the user is disabled. A running `callqa serve` sees
changes to the users file on the next request: `disable` shuts a user out at
once, and `passwd` ends their sessions.

Passwords are stored as argon2id hashes, never in clear. `add` and `passwd`
take the password from stdin (one line) when it is not a terminal, or with
--password-stdin; on a terminal, or with --generate-password, they make a
strong one and print it once.

Example:
  callqa users add maria.lopez --role reviewer --team \"Team B\"
  printf '%s\\n' \"$PW\" | callqa users add agent-0042 --role agent --agent-id jdoe --password-stdin
  callqa users list --format json
  callqa users disable agent-0042
  callqa users token maria.lopez --name maria-exports";

/// Add, list, disable and enable the people who log in to `callqa serve`,
/// set their passwords, and give their scripts tokens.
#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct UsersArgs {
    /// The directory holding users.json (and tokens.json), as given to
    /// `callqa serve` [default: $XDG_DATA_HOME/callqa, or
    /// ~/.local/share/callqa].
    #[arg(long, value_name = "DIR", env = "CALLQA_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// The users file itself, as `callqa serve --users` (wins over
    /// --data-dir).
    #[arg(long, value_name = "FILE", env = "CALLQA_USERS", global = true)]
    pub users: Option<PathBuf>,

    /// The tokens file `users token` adds to, as `callqa serve --tokens`
    /// (wins over --data-dir).
    #[arg(long, value_name = "FILE", env = "CALLQA_TOKENS", global = true)]
    pub tokens: Option<PathBuf>,

    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user.
    Add {
        /// The login name: letters, digits, `.`, `_`, `-`, `@`.
        name: String,
        /// What the user may do: admin, reviewer or agent.
        #[arg(long, value_enum)]
        role: Role,
        /// For an agent (required): the Amazon Connect agent id or username
        /// their sheets carry.
        #[arg(long, value_name = "ID")]
        agent_id: Option<String>,
        /// For a reviewer: a team (a level of the agent hierarchy, `Team B`,
        /// or a path of levels, `Lisbon/Team B`) whose sheets they see;
        /// repeat for several; none means all teams.
        #[arg(long = "team", value_name = "TEAM")]
        teams: Vec<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List the users: name, role, agent id, teams, state, when added
    /// (never a password hash).
    List {
        /// table (for people) or json (for scripts).
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Disable a user: a running server refuses their session and their
    /// tokens from their next request.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// Set a user's password; their sessions end.
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Create a token that acts for the user, with their role and what they
    /// may see, and print it once (revoke it with `callqa tokens revoke`).
    Token {
        name: String,
        /// What the token is for, for `callqa tokens list` and the logs
        /// [default: the user's name].
        #[arg(long = "name", value_name = "LABEL")]
        label: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct PasswordSource {
    /// Read the password from stdin (one line), so it appears in no command
    /// line or shell history.
    #[arg(long, conflicts_with = "generate_password")]
    pub password_stdin: bool,
    /// Make a strong password and print it on stdout, once.
    #[arg(long)]
    pub generate_password: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

pub fn run(args: UsersArgs) -> anyhow::Result<ExitCode> {
    let path = match &args.users {
        Some(path) => path.clone(),
        None => default_data_dir(args.data_dir.as_deref())?.join("users.json"),
    };
    match args.command {
        UsersCommand::Add { name, role, agent_id, teams, password } => {
            let (password, generated) = password.obtain()?;
            let user = user_store::add(&path, NewUser { name, role, agent_id, teams }, &password)?;
            if generated {
                println!("{password}");
            }
            eprintln!(
                "added {} ({}) to {}{}",
                user.name,
                describe(&user),
                path.display(),
                if generated { "; the password above is shown only now: hand it over now" } else { "" }
            );
        }
        UsersCommand::List { format } => list(&path, format)?,
        UsersCommand::Disable { name } => {
            let user = user_store::set_disabled(&path, &name, true)?;
            eprintln!("disabled {}: a running server refuses their session and tokens from now on", user.name);
        }
        UsersCommand::Enable { name } => {
            let user = user_store::set_disabled(&path, &name, false)?;
            eprintln!("enabled {} ({})", user.name, describe(&user));
        }
        UsersCommand::Passwd { name, password } => {
            // Looked up first, so a typo in the name fails before a
            // password is generated and shown for nothing.
            user_store::find(&path, &name)?;
            let (password, generated) = password.obtain()?;
            let user = user_store::set_password(&path, &name, &password)?;
            if generated {
                println!("{password}");
            }
            eprintln!("set the password of {}; their sessions have ended", user.name);
        }
        UsersCommand::Token { name, label } => {
            let user = user_store::find(&path, &name)?;
            if user.disabled {
                bail!("{} is disabled: `callqa users enable {}` first", user.name, user.name);
            }
            let tokens = match &args.tokens {
                Some(tokens) => tokens.clone(),
                None => default_data_dir(args.data_dir.as_deref())?.join("tokens.json"),
            };
            let label = label.unwrap_or_else(|| user.name.clone());
            let made = token_store::create_for_user(&tokens, &label, &user.name, user.role)?;
            println!("{}", made.secret);
            eprintln!(
                "created token {} ({}) acting for {} ({}) in {}; this is the only time it is shown: store it now",
                made.record.id,
                made.record.name,
                user.name,
                describe(&user),
                tokens.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl PasswordSource {
    /// The password, and whether it was generated (and must be shown).
    fn obtain(&self) -> anyhow::Result<(String, bool)> {
        let stdin = std::io::stdin();
        if self.generate_password || (!self.password_stdin && stdin.is_terminal()) {
            return Ok((user_store::generate_password()?, true));
        }
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("cannot read the password from stdin")?;
        let password = line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line);
        if password.is_empty() {
            bail!(
                "no password on stdin: pipe it in (`printf '%s\\n' \"$PW\" | callqa users ...`), or pass \
                 --generate-password to have one made"
            );
        }
        Ok((password.to_owned(), false))
    }
}

fn describe(user: &UserRecord) -> String {
    match (user.role, &user.agent_id) {
        (Role::Agent, Some(id)) => format!("agent, agent id {id}"),
        (Role::Reviewer, _) if !user.teams.is_empty() => format!("reviewer of {}", user.teams.join(", ")),
        (Role::Reviewer, _) => "reviewer of every team".to_owned(),
        (role, _) => role.to_string(),
    }
}

fn list(path: &std::path::Path, format: ListFormat) -> anyhow::Result<()> {
    let users = user_store::load(path)?;
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = users
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "name": u.name,
                        "role": u.role,
                        "agent_id": u.agent_id,
                        "teams": u.teams,
                        "disabled": u.disabled,
                        "created": u.created,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        ListFormat::Table => {
            if users.is_empty() {
                eprintln!("no users in {}; add one with `callqa users add NAME --role ROLE`", path.display());
                return Ok(());
            }
            let width = |f: &dyn Fn(&UserRecord) -> usize, min: usize| users.iter().map(f).max().unwrap_or(0).max(min);
            let name_w = width(&|u| u.name.chars().count(), 4);
            let agent_w = width(&|u| u.agent_id.as_deref().map_or(1, |a| a.chars().count()), 8);
            let teams_w = width(&|u| u.teams.join(", ").chars().count().max(1), 5);
            println!(
                "{:<name_w$}  {:<8}  {:<agent_w$}  {:<teams_w$}  {:<8}  CREATED",
                "NAME", "ROLE", "AGENT-ID", "TEAMS", "STATE"
            );
            for u in &users {
                let teams = if u.teams.is_empty() { "-".to_owned() } else { u.teams.join(", ") };
                println!(
                    "{:<name_w$}  {:<8}  {:<agent_w$}  {:<teams_w$}  {:<8}  {}",
                    u.name,
                    u.role.as_str(),
                    u.agent_id.as_deref().unwrap_or("-"),
                    teams,
                    if u.disabled { "disabled" } else { "enabled" },
                    u.created
                );
            }
        }
    }
    Ok(())
}
