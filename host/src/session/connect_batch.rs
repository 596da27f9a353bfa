//! Every session of a day from Amazon Connect data on disk: the contact
//! records (a directory as `callqa ingest --out` writes it, or any directory
//! of CTR files), the Contact Lens output directory, and a business events
//! file. The reading is here; the joining is [`assembler::assemble`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

use super::adapters::{find_analysis_files, read_contact_records, read_events, Analysis, AnalysisFile, EventTarget};
use super::assembler::{self, LegAnalysis};
use super::{Event, Session, SessionSource};

/// Where the data is, and which day to assemble.
#[derive(Clone, Debug)]
pub struct ConnectInputs {
    pub ctr: PathBuf,
    pub analysis: Option<PathBuf>,
    pub events: Option<PathBuf>,
    /// Only sessions whose first contact was initiated on this day in `tz`.
    pub day: Option<NaiveDate>,
    pub tz: Tz,
}

/// What a batch read, for the human summary.
#[derive(Debug, Default)]
pub struct BatchReport {
    pub contact_records: usize,
    pub older_versions: usize,
    pub sessions: usize,
    pub transferred_sessions: usize,
    pub outside_day: usize,
    pub without_start: usize,
    pub events_joined: usize,
    pub events_unmatched: usize,
    /// Analysis files that could not be read, with why.
    pub unusable_analysis: Vec<String>,
}

pub struct AssembledBatch {
    /// Sessions in conversation order, after the inputs that could not be
    /// read (a malformed record or event line), each with its source.
    pub sessions: Vec<(SessionSource, anyhow::Result<Session>)>,
    pub report: BatchReport,
}

/// A way to get one contact's analysis: a file to read, or one already read
/// (a file whose name did not say whose it is).
enum Candidate {
    File(AnalysisFile),
    Read(PathBuf, Box<Analysis>),
}

impl ConnectInputs {
    pub fn assemble(&self) -> anyhow::Result<AssembledBatch> {
        let mut report = BatchReport::default();
        let mut sessions = Vec::new();

        // A transfer can cross midnight, and a local day spans up to three UTC
        // partitions: read the neighbouring days too.
        let days = self
            .day
            .map(|d| d.checked_sub_days(Days::new(1)).unwrap_or(d)..=d.checked_add_days(Days::new(2)).unwrap_or(d));
        let mut records = Vec::new();
        for (source, record) in read_contact_records(&self.ctr, days)? {
            match record {
                Ok(r) => records.push((source, r)),
                Err(e) => sessions.push((source, Err(e.context("unusable contact record")))),
            }
        }
        report.contact_records = records.len();
        let (records, older) = assembler::latest_versions(records);
        report.older_versions = older;

        let mut chains = Vec::new();
        for chain in assembler::group_chains(records) {
            let start = chain[0].1.initiated_at;
            if let Some(day) = self.day {
                match start {
                    None => {
                        report.without_start += 1;
                        continue;
                    }
                    Some(t) if t.with_timezone(&self.tz).date_naive() != day => {
                        report.outside_day += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            chains.push(chain);
        }

        let mut events: Vec<Vec<Event>> = vec![Vec::new(); chains.len()];
        if let Some(path) = &self.events {
            let mut chain_of: HashMap<EventTarget, usize> = HashMap::new();
            for (i, chain) in chains.iter().enumerate() {
                for (_, leg) in chain {
                    chain_of.insert(EventTarget::Contact(leg.contact_id.clone()), i);
                }
                let session_id = chain
                    .iter()
                    .find_map(|(_, l)| l.initial_contact_id.clone())
                    .unwrap_or_else(|| chain[0].1.contact_id.clone());
                chain_of.insert(EventTarget::Session(session_id), i);
            }
            for (source, event) in read_events(path)? {
                match event {
                    Ok(e) => match chain_of.get(&e.target) {
                        Some(&i) => {
                            events[i].push(e.event);
                            report.events_joined += 1;
                        }
                        None => report.events_unmatched += 1,
                    },
                    Err(e) => sessions.push((source, Err(e.context("unusable business event")))),
                }
            }
        }

        let mut candidates = match &self.analysis {
            Some(dir) => self.analysis_candidates(dir, &mut report)?,
            None => BTreeMap::new(),
        };

        for (chain, events) in chains.into_iter().zip(events) {
            let mut analyses = BTreeMap::new();
            for (_, leg) in &chain {
                if let Some(found) = candidates.remove(&leg.contact_id) {
                    analyses.insert(leg.contact_id.clone(), read_first_usable(found, &mut report));
                }
            }
            let source = chain[0].0.clone();
            let legs: Vec<_> = chain.into_iter().map(|(_, r)| r).collect();
            if legs.len() > 1 {
                report.transferred_sessions += 1;
            }
            report.sessions += 1;
            sessions.push((source, assembler::assemble(&legs, &analyses, events)));
        }
        Ok(AssembledBatch { sessions, report })
    }

    fn analysis_candidates(
        &self,
        dir: &Path,
        report: &mut BatchReport,
    ) -> anyhow::Result<BTreeMap<String, Vec<Candidate>>> {
        let files = find_analysis_files(dir)?;
        let mut candidates: BTreeMap<String, Vec<Candidate>> = files
            .by_contact
            .into_iter()
            .map(|(id, files)| (id, files.into_iter().map(Candidate::File).collect()))
            .collect();
        for file in files.unnamed {
            match file.read() {
                Ok(analysis) => match analysis.contact_id.clone() {
                    Some(id) => candidates.entry(id).or_default().push(Candidate::Read(file.path, Box::new(analysis))),
                    None => report.unusable_analysis.push(format!(
                        "{}: neither its name (<ContactId>_analysis_…) nor CustomerMetadata.ContactId says which contact it analyses",
                        file.path.display()
                    )),
                },
                Err(e) => report.unusable_analysis.push(format!("{}: {e:#} (and its name does not say which contact it analyses)", file.path.display())),
            }
        }
        Ok(candidates)
    }
}

/// The first candidate that reads; the ones before it become problems.
fn read_first_usable(candidates: Vec<Candidate>, report: &mut BatchReport) -> LegAnalysis {
    let mut out = LegAnalysis::default();
    for candidate in candidates {
        let (path, read) = match candidate {
            Candidate::File(file) => {
                let read = file.read();
                (file.path, read)
            }
            Candidate::Read(path, analysis) => (path, Ok(*analysis)),
        };
        match read {
            Ok(analysis) => {
                out.analysis = Some(analysis);
                break;
            }
            Err(e) => {
                report.unusable_analysis.push(format!("{}: {e:#}", path.display()));
                out.problems.push(format!("Contact Lens analysis file {} is unusable: {e:#}", file_name(&path)));
            }
        }
    }
    out
}

/// The name alone: notes travel into QA sheets, which should not depend on
/// where a run happened to find the files.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

impl fmt::Display for BatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.unusable_analysis {
            writeln!(f, "warning: unusable Contact Lens analysis file {problem}")?;
        }
        write!(
            f,
            "{} contact records ({} duplicates or older versions dropped) -> {} sessions ({} with transfers); {} sessions outside the day, {} without an initiation time; {} events joined, {} for no session read",
            self.contact_records,
            self.older_versions,
            self.sessions,
            self.transferred_sessions,
            self.outside_day,
            self.without_start,
            self.events_joined,
            self.events_unmatched
        )
    }
}
