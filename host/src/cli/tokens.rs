//! `callqa tokens`: the machine tokens `callqa serve` requires (see
//! `serve/token_store.rs` for the file and why it holds only hashes).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::data_dir::default_data_dir;
use crate::serve::role::Role;
use crate::serve::token_store;

const AFTER_HELP: &str = "\
Roles:
  ingest     POST /v1/ctr and /v1/firehose/transform
  evaluate   POST /v1/sessions/evaluate
  admin      everything, including POST /v1/rules/reload and /v1/rules/{id}/release
Any token may read GET /v1/rules. POST /v1/firehose keeps its access key
(--firehose-access-key); /healthz and /metrics need no token.

A client sends its token as `Authorization: Bearer TOKEN`. The file holds
only each token's SHA-256: a lost token cannot be shown again; revoke it and
create another. A running `callqa serve` sees changes to the file on the next
request, without a restart.

Example:
  callqa tokens create --name transform-lambda --role ingest
  callqa tokens list
  callqa tokens revoke 3f9a0c21";

/// Create, list and revoke the tokens `callqa serve` requires.
#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct TokensArgs {
    /// The directory holding tokens.json, as given to `callqa serve`
    /// [default: $XDG_DATA_HOME/callqa, or ~/.local/share/callqa].
    #[arg(long, value_name = "DIR", env = "CALLQA_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// The tokens file itself, as `callqa serve --tokens` (wins over
    /// --data-dir).
    #[arg(long, value_name = "FILE", env = "CALLQA_TOKENS", global = true)]
    pub tokens: Option<PathBuf>,

    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a token and print it on stdout, once: it is stored only as a
    /// hash.
    Create {
        /// Who holds the token, for `list` and the logs
        /// (`transform-lambda`, `qa-batch`).
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List the tokens: id, name, role, when created (never the token).
    List,
    /// Revoke a token by its id (from `list`); a running server refuses it
    /// from the next request.
    Revoke {
        /// The token's id, as `list` shows it.
        id: String,
    },
}

pub fn run(args: TokensArgs) -> anyhow::Result<ExitCode> {
    let path = match args.tokens {
        Some(path) => path,
        None => default_data_dir(args.data_dir.as_deref())?.join("tokens.json"),
    };
    match args.command {
        TokensCommand::Create { name, role } => {
            let made = token_store::create(&path, &name, role)?;
            println!("{}", made.secret);
            eprintln!(
                "created token {} ({}, role {}) in {}; this is the only time it is shown: store it now",
                made.record.id,
                made.record.name,
                made.record.role,
                path.display()
            );
        }
        TokensCommand::List => {
            let tokens = token_store::load(&path)?;
            if tokens.is_empty() {
                eprintln!(
                    "no tokens in {}; create one with `callqa tokens create --name NAME --role ROLE`",
                    path.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let name_width = tokens.iter().map(|t| t.name.chars().count()).max().unwrap_or(0).max(4);
            println!("{:<8}  {:<name_width$}  {:<8}  CREATED", "ID", "NAME", "ROLE");
            for token in &tokens {
                println!("{:<8}  {:<name_width$}  {:<8}  {}", token.id, token.name, token.role.as_str(), token.created);
            }
        }
        TokensCommand::Revoke { id } => {
            let revoked = token_store::revoke(&path, &id)?;
            eprintln!("revoked token {} ({}, role {})", revoked.id, revoked.name, revoked.role);
        }
    }
    Ok(ExitCode::SUCCESS)
}
