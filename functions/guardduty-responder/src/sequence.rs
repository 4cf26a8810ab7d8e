//! Attack sequences (Extended Threat Detection, `AttackSequence:ECS/CompromisedCluster`
//! and the others naming ECS resources): each task and host they name goes through the
//! rails of its own kind of finding first; then one Critical notification lists the
//! signals, the tasks and hosts, and what became of each. Pure: the outcomes come in;
//! this is the sequence's outcome from them, and `notices::sequence` words it.
//!
//! The notice comes last because what was done is its idempotency marker: a redelivered
//! sequence finds every resource already contained (tasks stopped with this finding id
//! in their stop reason, hosts tagged and detached, snapshots tagged with it) and says
//! so (`already_done`, Info) instead of raising the same Critical alarm again.

use serde::Serialize;
use shared::notify::Outcome;

/// What became of one resource the sequence names (its own notification has the rest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contained {
    /// `task` or `host`.
    pub kind: &'static str,
    pub resource: String,
    pub outcome: Outcome,
}

/// The sequence's outcome from its resources': the worst that happened now, else
/// `already_done` when an earlier delivery contained them, else `skipped` (nothing named
/// could be acted on: outside opted-in clusters, or held by a rail for a person).
pub fn outcome(contained: &[Contained]) -> Outcome {
    [
        Outcome::Failed,
        Outcome::Planned,
        Outcome::Warning,
        Outcome::Done,
        Outcome::AlreadyDone,
    ]
    .into_iter()
    .find(|o| contained.iter().any(|c| c.outcome == *o))
    .unwrap_or(Outcome::Skipped)
}

#[cfg(test)]
pub(crate) mod tests;
