//! The `callqa` command line: argument parsing and dispatch only.

use callqa::cli;
use clap::{Parser, Subcommand};

/// Contact-record dedup and sandboxed QA rules for customer-service centres.
#[derive(Parser)]
#[command(name = "callqa", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate QA rules over session documents and write one QA sheet per session.
    Check(cli::check::CheckArgs),
    /// Deduplicate contact trace records into a sink (files, stdin, Firehose events, Kinesis streams).
    Ingest(cli::ingest::IngestArgs),
    /// Put contact records from files on a Kinesis data stream (tests, demos, migrations).
    Replay(cli::replay::ReplayArgs),
    /// Daily contact figures from a sink written by `callqa ingest`.
    Stats(cli::stats::StatsArgs),
    /// Session documents from Amazon Connect data (contact records, Contact Lens, events).
    Session(cli::session::SessionArgs),
    /// Manage dedup stores (`store init` creates a DynamoDB table with TTL).
    Store(cli::store::StoreArgs),
    /// The rule author's toolkit: scaffold, run once, run golden cases.
    Rule(cli::rule::RuleArgs),
    /// The sheet store: list and filter stored QA sheets.
    Sheets(cli::sheets::SheetsArgs),
    /// Check rule modules and rulesets before publishing (for CI).
    Validate(cli::validate::ValidateArgs),
    /// The long-running service: Firehose endpoints, real-time QA, hot-loaded rules, metrics.
    Serve(Box<cli::serve::ServeArgs>),
    /// Create, list and revoke the machine tokens `serve` requires.
    Tokens(cli::tokens::TokensArgs),
    /// Add, list and disable the people who log in (admins, reviewers, agents); tokens for their scripts.
    Users(cli::users::UsersArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Sheets(args) => cli::sheets::run(args),
        Command::Ingest(args) => cli::ingest::run(args),
        Command::Replay(args) => cli::replay::run(args),
        Command::Stats(args) => cli::stats::run(args),
        Command::Session(args) => cli::session::run(args),
        Command::Store(args) => cli::store::run(args),
        Command::Rule(args) => cli::rule::run(args),
        Command::Validate(args) => cli::validate::run(args),
        Command::Serve(args) => cli::serve::run(*args),
        Command::Tokens(args) => cli::tokens::run(args),
        Command::Users(args) => cli::users::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
