//! The shared store on Redis (redis-server): the seed, three hosts at once,
//! SIGKILL and restart, the server stopped mid-run.

use crate::servers;
use crate::servers::Kind;

#[test]
fn seed_gives_three_unique_three_duplicates_and_the_published_fingerprints() {
    servers::seed(Kind::Redis);
}

#[test]
fn three_hosts_over_overlapping_inputs_emit_each_unique_record_once() {
    servers::three_hosts(Kind::Redis);
}

#[test]
fn sigkill_mid_run_then_restart_loses_nothing_and_doubles_nothing() {
    servers::sigkill_and_restart(Kind::Redis);
}

#[test]
fn server_stopped_mid_run_fails_clearly_and_a_rerun_finishes() {
    servers::server_stopped_mid_run(Kind::Redis);
}
