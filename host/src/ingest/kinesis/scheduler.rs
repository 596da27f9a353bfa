use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::task::JoinHandle;

use super::shard_consumer::{ConsumerEnd, ConsumerSettings, HeldLease, ShardConsumer};
use super::shard_progress::{ShardProgress, StreamProgress};
use crate::aws::brief;
use crate::ctr::RecordDecoder;
use crate::dedup::{host_identity, Clock as _, DedupStore, StoreSettings, StoreUrl, SystemClock};
use crate::ingest::Counts;
use crate::sinks::{DeadLetterSink, Sink, SinkUrl};
use crate::sources::kinesis::{Checkpoint, Lease, LeaseChange, LeaseTable, StartPosition};

/// How a host reads a stream (`callqa ingest --from kinesis://`, `callqa serve --kinesis`).
#[derive(Debug, Clone)]
pub struct KinesisOptions {
    pub stream: String,
    /// The DynamoDB table of shard leases.
    pub lease_table: String,
    /// Where a shard without a checkpoint starts (children of a reshard
    /// always start at their first record).
    pub start: StartPosition,
    /// Keep reading at the tip; without it, stop once every shard was
    /// caught up after this run started.
    pub follow: bool,
    /// How long a lease's counter may stand still before its owner counts
    /// as gone (KCL's `failoverTimeMillis`).
    pub failover: Duration,
    /// Records per read and per claim batch.
    pub batch_size: usize,
    pub max_record_bytes: u64,
}

/// Where each shard's records go, and the store they are claimed in.
pub struct SinkSetup {
    pub store: StoreUrl,
    /// The embedded store when this process has it open already (`serve`):
    /// one process opens it once, and every shard shares it.
    pub opened: Option<Arc<dyn DedupStore>>,
    pub settings: StoreSettings,
    pub concurrency: usize,
    pub sink: SinkUrl,
    pub gzip: bool,
    pub decoder: RecordDecoder,
    /// Called with each batch's stored records once they are durable and
    /// completed (`serve` hands them to real-time QA).
    pub on_stored: Option<StoredHook>,
}

pub type StoredHook = Arc<dyn Fn(Vec<Vec<u8>>) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// What one host did with a stream.
#[derive(Debug, Clone, Serialize)]
pub struct KinesisSummary {
    pub stream: String,
    /// This host's name in the lease table.
    pub worker: String,
    pub store: String,
    pub sink: String,
    pub shards: BTreeMap<String, ShardProgress>,
    pub total: Counts,
    /// The most leases this host held at once.
    pub max_leases_held: usize,
    pub elapsed_seconds: f64,
    pub records_per_second: f64,
}

/// A shard this host reads: the consumer task, and what it owns.
struct Running {
    held: Arc<HeldLease>,
    task: JoinHandle<anyhow::Result<ConsumerEnd>>,
}

/// A shard's store and sink, kept when the lease goes so a lease taken
/// again reuses them.
struct ShardIo {
    store: Arc<dyn DedupStore>,
    sink: Arc<std::sync::Mutex<Box<dyn Sink>>>,
}

/// Takes, renews and balances this host's shard leases and runs a consumer
/// per held shard (KCL's scheduler and lease coordinator in one loop).
pub struct Scheduler {
    kinesis: aws_sdk_kinesis::Client,
    table: LeaseTable,
    options: KinesisOptions,
    setup: SinkSetup,
    dead_letters: Arc<std::sync::Mutex<DeadLetterSink>>,
    worker: String,
    progress: StreamProgress,
    running: BTreeMap<String, Running>,
    io: HashMap<String, ShardIo>,
    /// The embedded store: one process, one store for every shard.
    embedded: Option<Arc<dyn DedupStore>>,
    /// Each lease's counter and owner as last seen, and since when: a
    /// counter standing still for the failover time means a gone owner.
    seen: HashMap<String, (u64, Option<String>, Instant)>,
    max_held: usize,
}

impl Scheduler {
    pub async fn new(
        options: KinesisOptions,
        setup: SinkSetup,
        dead_letters: DeadLetterSink,
        progress: StreamProgress,
    ) -> anyhow::Result<Self> {
        let kinesis = crate::sources::kinesis::kinesis_client().await;
        let table = LeaseTable::connect(&options.lease_table).await;
        let nonce = crate::ctr::Fingerprint::of(format!("{:?}:{}", Instant::now(), std::process::id()).as_bytes());
        let worker = format!("{}:{}:{}", host_identity("kinesis"), std::process::id(), &nonce.to_hex()[..6]);
        let embedded = if setup.store.is_shared() {
            None
        } else if let Some(store) = &setup.opened {
            Some(Arc::clone(store))
        } else {
            let store = setup.store.open(setup.settings.clone(), &setup.sink.identity(), setup.concurrency).await?;
            Some(Arc::from(store))
        };
        Ok(Scheduler {
            kinesis,
            table,
            options,
            setup,
            dead_letters: Arc::new(std::sync::Mutex::new(dead_letters)),
            worker,
            progress,
            running: BTreeMap::new(),
            io: HashMap::new(),
            embedded,
            seen: HashMap::new(),
            max_held: 0,
        })
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The renewal and balancing period: several per failover time, so a
    /// live owner never looks gone.
    fn tick(&self) -> Duration {
        (self.options.failover / 4).max(Duration::from_millis(100))
    }

    /// Reads until caught up (or, with `follow`, until `shutdown` resolves),
    /// then gives every lease back.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<KinesisSummary> {
        let started = Instant::now();
        let started_at = SystemClock.now_millis();
        self.sync_shards().await?;
        let mut next_sync = Instant::now() + self.tick() * 8;
        tokio::pin!(shutdown);
        let result = loop {
            if let Err(err) = self.reap().await {
                break Err(err);
            }
            self.renew().await;
            if Instant::now() >= next_sync {
                if let Err(err) = self.sync_shards().await {
                    tracing::warn!("cannot list the shards of {}, retrying: {err:#}", self.options.stream);
                }
                next_sync = Instant::now() + self.tick() * 8;
            }
            let leases = match self.table.list(&self.options.stream).await {
                Ok(leases) => leases,
                Err(err) => {
                    tracing::warn!("cannot read the lease table, retrying: {err:#}");
                    tokio::select! {
                        _ = tokio::time::sleep(self.tick()) => continue,
                        _ = &mut shutdown => break Ok(()),
                    }
                }
            };
            self.observe(&leases);
            if !self.options.follow && self.running.is_empty() && self.all_caught_up(&leases, started_at) {
                // A reshard may have added shards since the last listing.
                if let Err(err) = self.sync_shards().await {
                    break Err(err);
                }
                match self.table.list(&self.options.stream).await {
                    Ok(again) if self.all_caught_up(&again, started_at) => break Ok(()),
                    Ok(_) => continue,
                    Err(err) => break Err(err),
                }
            }
            if let Err(err) = self.take_leases(&leases, started_at).await {
                tracing::warn!("cannot take shard leases, retrying: {err:#}");
            }
            self.max_held = self.max_held.max(self.running.len());
            tokio::select! {
                _ = tokio::time::sleep(self.tick()) => {}
                _ = &mut shutdown => break Ok(()),
            }
        };
        let stopped = self.stop_all().await;
        for io in self.io.values() {
            io.store.close().await.context("cannot close the dedup store")?;
        }
        // A store someone else opened is theirs to close.
        if let (Some(store), None) = (&self.embedded, &self.setup.opened) {
            store.close().await.context("cannot close the dedup store")?;
        }
        result?;
        stopped?;
        let shards = self.progress.snapshot();
        let mut total = Counts::default();
        for shard in shards.values() {
            total.add(&shard.counts);
        }
        let elapsed = started.elapsed().as_secs_f64();
        Ok(KinesisSummary {
            stream: self.options.stream.clone(),
            worker: self.worker.clone(),
            store: self
                .embedded
                .iter()
                .chain(self.io.values().map(|io| &io.store))
                .next()
                .map(|store| store.describe())
                .unwrap_or_default(),
            sink: self.setup.sink.to_string(),
            shards,
            total,
            max_leases_held: self.max_held,
            elapsed_seconds: elapsed,
            records_per_second: total.read as f64 / elapsed.max(1e-9),
        })
    }

    /// Creates a lease for every shard that has none: at the start position,
    /// or at its first record for a shard born of a reshard.
    async fn sync_shards(&self) -> anyhow::Result<()> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = match &next_token {
                Some(token) => self.kinesis.list_shards().next_token(token),
                None => self.kinesis.list_shards().stream_name(&self.options.stream),
            };
            let page = request.send().await.map_err(|err| {
                anyhow::anyhow!("cannot list the shards of stream {}: {}", self.options.stream, brief(&err))
            })?;
            shards.extend(page.shards().iter().cloned());
            match page.next_token() {
                Some(token) => next_token = Some(token.to_string()),
                None => break,
            }
        }
        let known: BTreeSet<String> =
            self.table.list(&self.options.stream).await?.into_iter().map(|lease| lease.shard_id).collect();
        let listed: BTreeSet<&str> = shards.iter().map(|s| s.shard_id()).collect();
        for shard in &shards {
            if known.contains(shard.shard_id()) {
                continue;
            }
            let parents: Vec<String> = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .filter(|parent| listed.contains(parent))
                .map(str::to_string)
                .collect();
            let checkpoint = if parents.is_empty() { self.options.start.checkpoint() } else { Checkpoint::TrimHorizon };
            let lease = Lease {
                stream: self.options.stream.clone(),
                shard_id: shard.shard_id().to_string(),
                owner: None,
                counter: 0,
                checkpoint,
                parents,
                caught_up_at: None,
            };
            if self.table.create(&lease).await? {
                tracing::info!(stream = %lease.stream, shard = %lease.shard_id, checkpoint = %lease.checkpoint, "new shard lease");
            }
        }
        Ok(())
    }

    fn observe(&mut self, leases: &[Lease]) {
        let now = Instant::now();
        for lease in leases {
            let entry = self.seen.entry(lease.key()).or_insert((lease.counter, lease.owner.clone(), now));
            if entry.0 != lease.counter || entry.1 != lease.owner {
                *entry = (lease.counter, lease.owner.clone(), now);
            }
        }
    }

    /// Free, or held by an owner whose counter stood still for the failover time.
    fn available(&self, lease: &Lease) -> bool {
        match &lease.owner {
            None => true,
            Some(owner) if *owner == self.worker => false,
            Some(_) => {
                self.seen.get(&lease.key()).is_some_and(|(_, _, since)| since.elapsed() >= self.options.failover)
            }
        }
    }

    /// Readable now: not at its end, and every parent at its end.
    fn ready(&self, lease: &Lease, leases: &[Lease]) -> bool {
        !lease.is_finished()
            && lease
                .parents
                .iter()
                .all(|parent| leases.iter().find(|l| l.shard_id == *parent).is_none_or(|l| l.is_finished()))
    }

    /// Without `--follow`: a free lease caught up during this run needs no
    /// one; a finished one never does.
    fn done_for_this_run(&self, lease: &Lease, started_at: i64) -> bool {
        lease.is_finished()
            || (!self.options.follow && lease.owner.is_none() && lease.caught_up_at.is_some_and(|at| at >= started_at))
    }

    fn all_caught_up(&self, leases: &[Lease], started_at: i64) -> bool {
        leases.iter().all(|lease| self.done_for_this_run(lease, started_at))
    }

    /// Takes free and expired leases up to this host's share, and when none
    /// is left, one lease from the busiest host if it holds two more than
    /// this one (KCL's balancing, one steal at a time).
    async fn take_leases(&mut self, leases: &[Lease], started_at: i64) -> anyhow::Result<()> {
        let wanted: Vec<&Lease> = leases
            .iter()
            .filter(|lease| self.ready(lease, leases) && !self.done_for_this_run(lease, started_at))
            .collect();
        let mut per_owner: BTreeMap<&str, Vec<&Lease>> = BTreeMap::new();
        for lease in &wanted {
            if let Some(owner) = lease.owner.as_deref() {
                if owner != self.worker && !self.available(lease) {
                    per_owner.entry(owner).or_default().push(lease);
                }
            }
        }
        let hosts = per_owner.len() + 1;
        let target = wanted.len().div_ceil(hosts);
        let mine = self.running.len();
        if mine >= target {
            return Ok(());
        }
        let mut free: Vec<&Lease> = wanted.iter().copied().filter(|lease| self.available(lease)).collect();
        // Hosts started together each begin at another shard, so their first
        // takes rarely collide.
        let rotate = crate::ctr::Fingerprint::of(self.worker.as_bytes()).to_hex().as_bytes()[0] as usize;
        if !free.is_empty() {
            let by = rotate % free.len();
            free.rotate_left(by);
        }
        // Half the shortfall a round: hosts that start together see each
        // other before one has taken everything.
        let mut to_take = (target - mine).div_ceil(2);
        for lease in free {
            if to_take == 0 {
                break;
            }
            if self.take(lease).await? {
                to_take -= 1;
            }
        }
        if self.running.len() == mine {
            let busiest = per_owner.values().max_by_key(|held| held.len());
            if let Some(held) = busiest.filter(|held| held.len() > mine + 1) {
                if let Some(lease) = held.last() {
                    tracing::info!(shard = %lease.shard_id, from = lease.owner.as_deref().unwrap_or(""), "taking a lease to balance the shards");
                    self.take(lease).await?;
                }
            }
        }
        Ok(())
    }

    async fn take(&mut self, seen: &Lease) -> anyhow::Result<bool> {
        let Some(lease) = self.table.take(seen, &self.worker).await? else { return Ok(false) };
        let shard = lease.shard_id.clone();
        let io = match self.io.get(&shard) {
            Some(io) => ShardIo { store: Arc::clone(&io.store), sink: Arc::clone(&io.sink) },
            None => {
                let io = self.open_io(&lease).await?;
                self.io.insert(shard.clone(), ShardIo { store: Arc::clone(&io.store), sink: Arc::clone(&io.sink) });
                io
            }
        };
        let held = HeldLease::new(lease);
        let consumer = ShardConsumer {
            kinesis: self.kinesis.clone(),
            table: self.table.clone(),
            held: Arc::clone(&held),
            stream: self.options.stream.clone(),
            shard_id: shard.clone(),
            store: io.store,
            sink: io.sink,
            dead_letters: Arc::clone(&self.dead_letters),
            decoder: self.setup.decoder,
            settings: ConsumerSettings {
                batch_size: self.options.batch_size,
                follow: self.options.follow,
                max_record_bytes: self.options.max_record_bytes,
                idle: Duration::from_secs(1),
                attempts: 5,
            },
            progress: self.progress.clone(),
            on_stored: self.setup.on_stored.clone(),
        };
        self.progress.update(&shard, |p| {
            p.held = true;
            p.leases_taken += 1;
        });
        self.running.insert(shard, Running { held, task: tokio::spawn(consumer.run()) });
        Ok(true)
    }

    /// The shard's store and sink. With a shared store, its batches are
    /// claimed under the shard's name: whoever holds the lease settles what
    /// an earlier owner left. A local directory is seen by one machine only,
    /// so there the name keeps the host's.
    async fn open_io(&self, lease: &Lease) -> anyhow::Result<ShardIo> {
        let store: Arc<dyn DedupStore> = match &self.embedded {
            Some(store) => Arc::clone(store),
            None => {
                let sink = self.setup.sink.identity();
                let base = if self.setup.sink.is_shared() { sink } else { host_identity(&sink) };
                let owner = format!("{base}#kinesis:{}", lease.key());
                Arc::from(self.setup.store.open_for(self.setup.settings.clone(), owner, self.setup.concurrency).await?)
            }
        };
        let (url, gzip, id) = (self.setup.sink.clone(), self.setup.gzip, store.instance_id().to_string());
        let sink = tokio::task::spawn_blocking(move || url.open(&id, gzip)).await.context("the sink task failed")??;
        Ok(ShardIo { store, sink: Arc::new(std::sync::Mutex::new(sink)) })
    }

    /// Raises the counter of every lease a consumer is still using.
    async fn renew(&mut self) {
        for (shard, running) in &self.running {
            if running.task.is_finished() {
                continue;
            }
            match running.held.advance(&self.table, LeaseChange::default()).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(shard = %shard, "lease taken by another host: stopping the shard"),
                // One failed renewal is not a lost lease; the failover time
                // allows several.
                Err(err) => tracing::warn!(shard = %shard, "cannot renew the lease: {err:#}"),
            }
        }
    }

    /// Collects consumers that ended. A failed one fails the run without
    /// `--follow`; with it the shard's lease is given back and retried.
    async fn reap(&mut self) -> anyhow::Result<()> {
        let finished: Vec<String> =
            self.running.iter().filter(|(_, r)| r.task.is_finished()).map(|(shard, _)| shard.clone()).collect();
        for shard in finished {
            let running = self.running.remove(&shard).expect("listed above");
            match running.task.await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    let err = err.context(format!("shard {shard} of stream {}", self.options.stream));
                    if !self.options.follow {
                        return Err(err);
                    }
                    tracing::error!("{err:#}; giving the lease back");
                    let _ =
                        running.held.advance(&self.table, LeaseChange { release: true, ..Default::default() }).await;
                    self.progress.update(&shard, |p| p.held = false);
                }
                Err(err) => anyhow::bail!("the consumer of shard {shard} panicked: {err}"),
            }
        }
        Ok(())
    }

    /// Asks every consumer to stop, waits for them (each gives its lease
    /// back after the batch in hand), and reports the first failure.
    async fn stop_all(&mut self) -> anyhow::Result<()> {
        for running in self.running.values() {
            running.held.stop.store(true, Ordering::SeqCst);
        }
        let mut first = Ok(());
        for (shard, running) in std::mem::take(&mut self.running) {
            let ended = running.task.await;
            let failed = match ended {
                Ok(Ok(_)) => continue,
                Ok(Err(err)) => err.context(format!("shard {shard}")),
                Err(err) => anyhow::anyhow!("the consumer of shard {shard} panicked: {err}"),
            };
            if first.is_ok() {
                first = Err(failed);
            }
        }
        first
    }
}
