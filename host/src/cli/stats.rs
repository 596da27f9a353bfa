use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StatsArgs {}

pub fn run(_args: StatsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("callqa stats is being built")
}
