use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::sinks::{list_record_objects, read_record_object, s3_client, S3Location};

/// The fields of one contact version the daily figures use.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactVersion {
    pub contact_id: String,
    pub last_update: Option<DateTime<Utc>>,
    pub initiated: Option<DateTime<Utc>>,
    pub initiation_method: Option<String>,
    pub channel: Option<String>,
    pub queue: Option<String>,
    /// Queued: the contact has a `Queue` with an enqueue time or a duration.
    pub queued: bool,
    pub queue_seconds: Option<f64>,
    /// Connected to an agent: `Agent.ConnectedToAgentTimestamp` is set.
    pub connected: bool,
    pub interaction_seconds: f64,
    pub hold_seconds: f64,
    pub after_contact_work_seconds: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordFields {
    contact_id: Option<String>,
    last_update_timestamp: Option<String>,
    initiation_timestamp: Option<String>,
    initiation_method: Option<String>,
    channel: Option<String>,
    queue: Option<QueueFields>,
    agent: Option<AgentFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueueFields {
    name: Option<String>,
    duration: Option<f64>,
    enqueue_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentFields {
    connected_to_agent_timestamp: Option<String>,
    agent_interaction_duration: Option<f64>,
    customer_hold_duration: Option<f64>,
    after_contact_work_duration: Option<f64>,
}

fn instant(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

impl ContactVersion {
    /// Reads one NDJSON line; `None` when it is not a contact record.
    pub fn parse(line: &[u8]) -> Option<ContactVersion> {
        let fields: RecordFields = serde_json::from_slice(line).ok()?;
        let contact_id = fields.contact_id.filter(|id| !id.is_empty())?;
        let queue = fields.queue;
        let agent = fields.agent;
        let connected = agent.as_ref().is_some_and(|a| a.connected_to_agent_timestamp.is_some());
        let agent_seconds = |pick: fn(&AgentFields) -> Option<f64>| agent.as_ref().and_then(pick).unwrap_or(0.0);
        Some(ContactVersion {
            contact_id,
            last_update: instant(fields.last_update_timestamp.as_deref()),
            initiated: instant(fields.initiation_timestamp.as_deref()),
            initiation_method: fields.initiation_method,
            channel: fields.channel,
            queued: queue.as_ref().is_some_and(|q| q.enqueue_timestamp.is_some() || q.duration.is_some()),
            queue_seconds: queue.as_ref().and_then(|q| q.duration),
            queue: queue.and_then(|q| q.name),
            connected,
            interaction_seconds: agent_seconds(|a| a.agent_interaction_duration),
            hold_seconds: agent_seconds(|a| a.customer_hold_duration),
            after_contact_work_seconds: agent_seconds(|a| a.after_contact_work_duration),
        })
    }
}

/// The latest version of every contact found in a sink.
#[derive(Debug, Default)]
pub struct LatestVersions {
    pub contacts: HashMap<String, ContactVersion>,
    pub files: u64,
    pub records: u64,
    /// Lines that are not contact records (reported, not counted).
    pub unreadable: u64,
}

impl LatestVersions {
    /// Reads every `.ndjson` / `.ndjson.gz` file under `dir`, skipping hidden
    /// files (the sink's temporaries) the way Hive-style readers do.
    pub fn read_sink(dir: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(dir.is_dir(), "{} is not a directory written by `callqa ingest --out`", dir.display());
        let mut files: Vec<PathBuf> = Vec::new();
        let walker = walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with(['.', '_']));
        for entry in walker {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_file() && (name.ends_with(".ndjson") || name.ends_with(".ndjson.gz")) {
                files.push(entry.into_path());
            }
        }
        let mut latest = LatestVersions::default();
        for path in files {
            latest.read_file(&path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        Ok(latest)
    }

    /// Reads every `.ndjson` / `.ndjson.gz` object under an `s3://` sink.
    pub fn read_bucket(location: &S3Location) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let client = s3_client().await;
            let mut latest = LatestVersions::default();
            for key in list_record_objects(&client, location).await? {
                // Unzipped by the reader, so the lines are read as from a plain file.
                let bytes = read_record_object(&client, &location.bucket, &key).await?;
                latest.read_lines(&bytes[..]).with_context(|| format!("cannot read s3://{}/{key}", location.bucket))?;
            }
            Ok(latest)
        })
    }

    fn read_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::open(path)?;
        let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        self.read_lines(reader)
    }

    fn read_lines(&mut self, reader: impl BufRead) -> anyhow::Result<()> {
        self.files += 1;
        for line in reader.split(b'\n') {
            let line = line?;
            if line.trim_ascii().is_empty() {
                continue;
            }
            match ContactVersion::parse(&line) {
                Some(version) => self.add(version),
                None => self.unreadable += 1,
            }
        }
        Ok(())
    }

    /// Keeps the newer of two versions; on a tie the first one read stays.
    pub fn add(&mut self, version: ContactVersion) {
        self.records += 1;
        match self.contacts.get_mut(&version.contact_id) {
            Some(known) if version.last_update > known.last_update => *known = version,
            Some(_) => {}
            None => {
                self.contacts.insert(version.contact_id.clone(), version);
            }
        }
    }
}
