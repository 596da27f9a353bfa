use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct IngestArgs {}

pub fn run(_args: IngestArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("callqa ingest is being built")
}
