//! `callqa store init`: prepare a dedup store before the first `callqa ingest`.

use std::process::ExitCode;

use crate::dedup::{ClaimTable, DynamoDbStore, EmbeddedStore, RedisStore, StoreSettings, StoreUrl, SystemClock};
use crate::sources::kinesis::LeaseTable;

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
    /// server answers; for `file:PATH`, create the file. With --leases, also
    /// the table of Kinesis shard leases.
    Init(InitArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// `dynamodb://TABLE`, `redis://HOST:PORT[/DB]` or `file:PATH`.
    #[arg(long, value_name = "STORE", env = "CALLQA_STORE", required_unless_present = "leases")]
    pub store: Option<String>,

    /// `dynamodb://TABLE`: the table of shard leases and checkpoints that
    /// hosts reading a Kinesis stream share (partition key `leaseKey`,
    /// on-demand billing).
    #[arg(long, value_name = "dynamodb://TABLE", env = "CALLQA_LEASES")]
    pub leases: Option<String>,
}

pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StoreCommand::Init(init) => run_init(init),
    }
}

fn run_init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(spec) = &args.leases {
        let table = crate::cli::ingest::lease_table(Some(spec), &StoreUrl::File(Default::default()))?;
        runtime.block_on(async {
            let leases = LeaseTable::connect(&table).await;
            let verb = if leases.init().await? { "created" } else { "already exists:" };
            eprintln!("{verb} {}", leases.describe());
            anyhow::Ok(())
        })?;
    }
    let Some(store) = &args.store else { return Ok(ExitCode::SUCCESS) };
    match StoreUrl::parse(store)? {
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
