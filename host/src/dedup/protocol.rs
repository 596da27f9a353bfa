//! What a claim already standing on a fingerprint means for a new claim on
//! it: the one judgement every store makes (see "Protocol" and "Shared
//! stores" in the module docs of `dedup`).
//!
//! The stores differ in one deliberate way, named [`TakeoverPolicy`]: the
//! embedded store may take over a batch whose lease ran out, because its
//! file lock proves the batch's process is gone; a shared store never
//! takes over by time alone, because a lease running out proves nothing
//! about a host that may still be writing.

use serde::{Deserialize, Serialize};

use super::{ClaimOutcome, Millis};

/// Where a batch stands. Stored as its kebab-case name by every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchStatus {
    InProgress,
    Completed,
    /// Resolved without its owner: records in `durable_days` reached the
    /// sink, the others count as absent.
    Settled,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::InProgress => "in-progress",
            BatchStatus::Completed => "completed",
            BatchStatus::Settled => "settled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "in-progress" => BatchStatus::InProgress,
            "completed" => BatchStatus::Completed,
            "settled" => BatchStatus::Settled,
            _ => return None,
        })
    }
}

/// The claim found on a fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct StandingClaim {
    /// The batch that made it.
    pub token: u64,
    /// The sink partition its record was to be written to.
    pub day: i32,
    /// Whether its record was a newer version of a known contact.
    pub update: bool,
    pub expires: Millis,
}

/// What the store knows of the batch that owns a standing claim.
#[derive(Debug, Clone, Copy)]
pub struct OwnerBatch<'a> {
    pub status: BatchStatus,
    /// Claimed by the process asking (the same run): its records are
    /// already on their way to the sink.
    pub ours: bool,
    pub lease_until: Millis,
    pub durable_days: &'a [i32],
}

/// What to do with a fingerprint that has a claim standing on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The standing claim no longer counts: claim the record.
    /// `inherited_update` is the update flag of the claim it replaces, so a
    /// record re-claimed after a crash is still counted as what it was.
    Absent { inherited_update: Option<bool> },
    /// The standing claim decides: duplicate, or held elsewhere.
    Decided(ClaimOutcome),
}

/// Whether a batch in progress can be taken over once its lease runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeoverPolicy {
    /// The embedded store: only one process has the file open, so a batch
    /// of another session is a dead process's, and past its lease it is
    /// taken over.
    TakeOverExpiredLease,
    /// Shared stores: wait. A live owner completes within its lease; a dead
    /// one is settled against its own sink by its host's next run.
    /// `min_wait` keeps the retry from spinning on a lease that already ran
    /// out.
    WaitForOwner { min_wait: Millis },
}

/// Judges a standing claim before its batch is looked up; `None` when only
/// the batch can tell. `claiming` is the token of the batch asking.
pub fn judge_claim(standing: &StandingClaim, claiming: u64, now: Millis) -> Option<Judgement> {
    if standing.expires <= now {
        // Expired entries count as absent even before the store deletes them.
        return Some(Judgement::Absent { inherited_update: None });
    }
    if standing.token == claiming {
        // The same fingerprint earlier in this batch.
        return Some(Judgement::Decided(ClaimOutcome::Duplicate));
    }
    None
}

impl TakeoverPolicy {
    /// Judges a standing claim by the batch that owns it (`None`: the batch
    /// is gone while a claim naming it lives, which only a clock jump
    /// causes; keeping the record out is the safe side).
    pub fn judge_owner(self, standing: &StandingClaim, owner: Option<&OwnerBatch<'_>>, now: Millis) -> Judgement {
        let Some(owner) = owner else { return Judgement::Decided(ClaimOutcome::Duplicate) };
        let absent = Judgement::Absent { inherited_update: Some(standing.update) };
        match owner.status {
            BatchStatus::Completed => Judgement::Decided(ClaimOutcome::Duplicate),
            BatchStatus::Settled if owner.durable_days.contains(&standing.day) => {
                Judgement::Decided(ClaimOutcome::Duplicate)
            }
            BatchStatus::Settled => absent,
            BatchStatus::InProgress if owner.ours => Judgement::Decided(ClaimOutcome::Duplicate),
            BatchStatus::InProgress => match self {
                TakeoverPolicy::TakeOverExpiredLease if owner.lease_until <= now => absent,
                TakeoverPolicy::TakeOverExpiredLease => {
                    Judgement::Decided(ClaimOutcome::InProgressElsewhere { lease_until: owner.lease_until })
                }
                TakeoverPolicy::WaitForOwner { min_wait } => Judgement::Decided(ClaimOutcome::InProgressElsewhere {
                    lease_until: owner.lease_until.max(now + min_wait),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000;

    fn standing() -> StandingClaim {
        StandingClaim { token: 7, day: 19_000, update: true, expires: NOW + 1 }
    }

    fn owner(status: BatchStatus, lease_until: Millis) -> OwnerBatch<'static> {
        OwnerBatch { status, ours: false, lease_until, durable_days: &[19_000] }
    }

    #[test]
    fn an_expired_claim_is_absent_and_a_claim_of_the_same_batch_a_duplicate() {
        let expired = StandingClaim { expires: NOW, ..standing() };
        assert_eq!(judge_claim(&expired, 8, NOW), Some(Judgement::Absent { inherited_update: None }));
        assert_eq!(judge_claim(&standing(), 7, NOW), Some(Judgement::Decided(ClaimOutcome::Duplicate)));
        assert_eq!(judge_claim(&standing(), 8, NOW), None);
    }

    #[test]
    fn the_policies_differ_only_on_an_expired_lease() {
        let take = TakeoverPolicy::TakeOverExpiredLease;
        let wait = TakeoverPolicy::WaitForOwner { min_wait: 5_000 };
        let lapsed = owner(BatchStatus::InProgress, NOW - 1);
        assert_eq!(
            take.judge_owner(&standing(), Some(&lapsed), NOW),
            Judgement::Absent { inherited_update: Some(true) }
        );
        assert_eq!(
            wait.judge_owner(&standing(), Some(&lapsed), NOW),
            Judgement::Decided(ClaimOutcome::InProgressElsewhere { lease_until: NOW + 5_000 })
        );
        let live = owner(BatchStatus::InProgress, NOW + 10);
        for policy in [take, wait] {
            assert!(matches!(
                policy.judge_owner(&standing(), Some(&live), NOW),
                Judgement::Decided(ClaimOutcome::InProgressElsewhere { .. })
            ));
            let ours = OwnerBatch { ours: true, ..live };
            assert_eq!(policy.judge_owner(&standing(), Some(&ours), NOW), Judgement::Decided(ClaimOutcome::Duplicate));
        }
    }

    #[test]
    fn a_settled_batch_counts_only_the_days_that_reached_the_sink() {
        let policy = TakeoverPolicy::TakeOverExpiredLease;
        let settled = owner(BatchStatus::Settled, 0);
        assert_eq!(policy.judge_owner(&standing(), Some(&settled), NOW), Judgement::Decided(ClaimOutcome::Duplicate));
        let other_day = StandingClaim { day: 19_001, ..standing() };
        assert_eq!(
            policy.judge_owner(&other_day, Some(&settled), NOW),
            Judgement::Absent { inherited_update: Some(true) }
        );
        let completed = owner(BatchStatus::Completed, 0);
        assert_eq!(policy.judge_owner(&other_day, Some(&completed), NOW), Judgement::Decided(ClaimOutcome::Duplicate));
        assert_eq!(policy.judge_owner(&other_day, None, NOW), Judgement::Decided(ClaimOutcome::Duplicate));
    }
}
