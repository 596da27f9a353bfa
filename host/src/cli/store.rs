//! `callqa store init`: prepare a dedup store before the first `callqa ingest`.

use std::process::ExitCode;

use crate::dedup::{ClaimTable, DynamoDbStore, EmbeddedStore, RedisStore, StoreSettings, StoreUrl, SystemClock};

/// Manage dedup stores.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Create the store: for `dynamodb://TABLE` the table (partition key `id`,
    /// on-demand billing) with TTL on `expires_at`; for Redis, check the
    /// server answers; for `file:PATH`, create the file.
    Init(InitArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// `dynamodb://TABLE`, `redis://HOST:PORT[/DB]` or `file:PATH`.
    #[arg(long, value_name = "STORE", env = "CALLQA_STORE")]
    pub store: String,
}

pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StoreCommand::Init(init) => run_init(init),
    }
}

fn run_init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match StoreUrl::parse(&args.store)? {
        StoreUrl::DynamoDb { table } => runtime.block_on(async {
            let store = DynamoDbStore::connect(&table).await?;
            let init = store.init().await?;
            if let Some(warning) = &init.ttl_warning {
                eprintln!("warning: {warning}");
            }
            let verb = if init.created { "created" } else { "already exists:" };
            eprintln!("{verb} {}", store.describe());
            anyhow::Ok(())
        })?,
        StoreUrl::Redis { url } => runtime.block_on(async {
            let store = RedisStore::connect(&url).await?;
            let id = store.store_id().await?;
            eprintln!("{} is ready (store {id}); entries expire by Redis TTL, nothing to create", store.describe());
            anyhow::Ok(())
        })?,
        StoreUrl::File(path) => {
            let settings = StoreSettings {
                ttl: std::time::Duration::from_secs(86400),
                lease: std::time::Duration::from_secs(30),
                clock: std::sync::Arc::new(SystemClock),
            };
            EmbeddedStore::open(&path, settings)?;
            eprintln!("file:{} is ready", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
