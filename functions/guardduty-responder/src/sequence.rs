//! Attack sequences (Extended Threat Detection, `AttackSequence:ECS/CompromisedCluster`
//! and the others naming ECS resources): each task and host they name goes through the
//! rails of its own kind of finding first; then one Critical notification lists the
//! signals, the tasks and hosts, and what became of each. Pure: the outcomes come in.
//!
//! The notice comes last because what was done is its idempotency marker: a redelivered
//! sequence finds every resource already contained (tasks stopped with this finding id
//! in their stop reason, hosts tagged and detached, snapshots tagged with it) and says
//! so (`already_done`, Info) instead of raising the same Critical alarm again.

use serde::Serialize;
use serde_json::{json, Value};
use shared::notify::{escape, Notice, Outcome, Severity};

use crate::decide::FIELD_MAX;
use crate::notices::finding_record;
use crate::parse::SequenceThreat;

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

/// The notification of an attack sequence: Critical, what GuardDuty correlated (its
/// signals), the tasks and hosts involved and what became of each; Info "already
/// contained" when a redelivery found everything done.
pub fn notice(seq: &SequenceThreat, contained: &[Contained]) -> (Outcome, Notice) {
    let f = &seq.finding;
    let outcome = outcome(contained);
    let verdict = match outcome {
        _ if contained.is_empty() => "no task or host named",
        Outcome::Failed => "containment FAILED, retried",
        Outcome::AlreadyDone => "already contained",
        Outcome::Skipped => "not contained, needs a person",
        Outcome::Done | Outcome::Warning | Outcome::Planned => "contained",
    };
    let severity = match outcome {
        // Told already, with the Critical alarm, by the delivery that contained it.
        Outcome::AlreadyDone => Severity::Info,
        _ => Severity::Critical,
    };
    let Some(s) = f.sequence() else {
        return (
            outcome,
            Notice::new(
                severity,
                format!("{}: {verdict}", escape(&f.finding_type, FIELD_MAX)),
                String::new(),
            ),
        );
    };
    let signals: Vec<Value> = s
        .signals
        .iter()
        .take(20)
        .map(|sig| {
            json!({
                "name": sig.name.as_deref().map(|n| escape(n, FIELD_MAX)),
                "type": sig.signal_type.as_deref().map(|t| escape(t, 40)),
                "severity": sig.severity,
                "count": sig.count,
                "description": sig.description.as_deref().map(|d| escape(d, FIELD_MAX)),
                "resources": sig.resource_uids.iter().take(10).map(|r| escape(r, FIELD_MAX)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let esc =
        |items: &[String]| -> Vec<String> { items.iter().map(|i| escape(i, FIELD_MAX)).collect() };
    let tasks: Vec<String> = esc(&seq
        .tasks
        .iter()
        .filter_map(|t| t.finding.task()?.arn.clone())
        .collect::<Vec<_>>());
    let hosts = esc(&seq.hosts);
    let clusters = esc(&s
        .clusters()
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>());
    let mut description = format!(
        "GuardDuty correlated {} signal(s) into **{}** (severity {}, finding {}).",
        s.signals.len(),
        escape(&f.finding_type, FIELD_MAX),
        f.severity,
        escape(&f.id, 100)
    );
    if let Some(d) = &s.description {
        description.push_str(&format!("\n\n{}", escape(d, 1000)));
    }
    description.push_str("\n\n**Signals:**");
    for sig in s.signals.iter().take(20) {
        description.push_str(&format!(
            "\n- {} ({}, severity {}, seen {} time(s))",
            escape(sig.name.as_deref().unwrap_or("?"), FIELD_MAX),
            escape(sig.signal_type.as_deref().unwrap_or("?"), 40),
            sig.severity.map_or("?".into(), |v| v.to_string()),
            sig.count.unwrap_or(1)
        ));
    }
    let list = |items: &[String]| match items.is_empty() {
        true => "none".to_string(),
        false => items.join(", "),
    };
    description.push_str(&format!(
        "\n\n**Tasks:** {}\n**Hosts:** {}\n**Clusters:** {}",
        list(&tasks),
        list(&hosts),
        list(&clusters)
    ));
    if !contained.is_empty() {
        description.push_str("\n\n**Containment** (each under the rails of its own kind of finding: severity, allow/deny lists, health floor with its Critical override, crash-loop breaker; each has its own notification with the details):");
        for c in contained {
            description.push_str(&format!(
                "\n- {} {}: {}",
                c.kind,
                escape(&c.resource, FIELD_MAX),
                c.outcome.as_str()
            ));
        }
    }
    let notice = Notice::new(
        severity,
        format!(
            "{} {}: {} task(s), {} host(s), {verdict}",
            f.level().as_str(),
            escape(&f.finding_type, FIELD_MAX),
            tasks.len(),
            hosts.len()
        ),
        description,
    )
    .detail("finding", finding_record(f))
    .detail(
        "sequence",
        json!({
            "uid": s.uid.as_deref().map(|u| escape(u, 100)),
            "signals": signals,
            "tasks": tasks,
            "hosts": hosts,
            "clusters": clusters,
            "actors": s.actors.len(),
            "endpoints": s.endpoints.len(),
        }),
    )
    .detail(
        "containment",
        contained
            .iter()
            .map(|c| json!({"kind": c.kind, "resource": escape(&c.resource, FIELD_MAX), "outcome": c.outcome}))
            .collect::<Vec<_>>(),
    )
    .next_step("Open the attack sequence in the GuardDuty console: it shows the order of the signals, the actors (credentials used) and the network endpoints.")
    .next_step("Rotate the credentials the actors used (task roles, access keys): stopping tasks does not revoke credentials already taken.");
    (outcome, notice)
}

#[cfg(test)]
mod tests;
