//! guardduty-responder's wording: the finding, the task and its host as a person reads
//! them (everything that came from the finding's runtime part escaped), and the one
//! notification a response sends, listing every step with its real outcome and the
//! evidence it kept.

use serde::Serialize;
use serde_json::{json, Map, Value};
use shared::aws::ecs::TaskEvidence;
use shared::events::guardduty::Finding;
use shared::exec::action::{ISOLATE_NETWORK, SNAPSHOT_HOST, STOP_TASK};
use shared::exec::Executed;
use shared::notify::{escape, Notice, Outcome};

use crate::decide::{family_of, Host, Plan, Step, FIELD_MAX};
use crate::parse::Threat;

/// `High Execution:Runtime/ReverseShell in prod/web: stop task` (who: service, else family).
pub(crate) fn title(threat: &Threat, task: Option<&TaskEvidence>, verdict: &str) -> String {
    let f = &threat.finding;
    let who = task
        .map(|e| {
            e.task
                .service()
                .unwrap_or_else(|| family_of(&e.task.task_definition_arn))
                .to_string()
        })
        .or_else(|| {
            let t = f.task()?;
            t.group
                .as_deref()
                .and_then(|g| g.strip_prefix("service:"))
                .or_else(|| t.family())
                .map(str::to_string)
        });
    let place = match who {
        Some(w) => format!("{}/{}", threat.cluster, w),
        None => threat.cluster.clone(),
    };
    // The verdict is ours; the rest is escaped like anything else from an event.
    format!(
        "{} {} in {}: {verdict}",
        f.level().as_str(),
        escape(&f.finding_type, 80),
        escape(&place, 120)
    )
}

pub(crate) fn finding_text(threat: &Threat) -> String {
    let f = &threat.finding;
    let mut text = format!(
        "**GuardDuty {} finding** {} (severity {}, id {}), seen {} time(s), first {} last {}.\n\n{}",
        f.level().as_str(),
        escape(&f.finding_type, FIELD_MAX),
        f.severity,
        escape(&f.id, FIELD_MAX),
        f.service.count,
        escape(f.service.event_first_seen.as_deref().unwrap_or("?"), 40),
        escape(f.service.event_last_seen.as_deref().unwrap_or("?"), 40),
        escape(&f.title, 500),
    );
    if let Some(t) = f.task() {
        text.push_str(&format!(
            "\n\n**Task** {} in cluster {} (group {}, launch type {}).",
            escape(t.arn.as_deref().unwrap_or("?"), FIELD_MAX),
            escape(&threat.cluster, FIELD_MAX),
            escape(t.group.as_deref().unwrap_or("?"), FIELD_MAX),
            escape(t.launch_type.as_deref().unwrap_or("?"), 20),
        ));
    }
    if let Some(p) = f.process() {
        text.push_str(&format!(
            "\n\n**Process** (as reported from inside the container): name {}, path {}, pid {}, user {}, sha256 {}.",
            escape(p.name.as_deref().unwrap_or("?"), FIELD_MAX),
            escape(p.executable_path.as_deref().unwrap_or("?"), FIELD_MAX),
            p.pid.map_or("?".to_string(), |p| p.to_string()),
            escape(p.user.as_deref().unwrap_or("?"), FIELD_MAX),
            escape(p.executable_sha256.as_deref().unwrap_or("?"), 64),
        ));
    }
    let context = context_record(f);
    if !context.is_empty() {
        let pairs: Vec<String> = context
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
            .collect();
        text.push_str(&format!("\n\n**Context:** {}", pairs.join("; ")));
    }
    text
}

pub(crate) fn task_text(e: &TaskEvidence, host: Option<&Host>) -> String {
    let t = &e.task;
    let containers: Vec<String> = e
        .containers
        .iter()
        .map(|c| {
            escape(
                &format!(
                    "{} {}@{}",
                    c.name,
                    c.image.as_deref().unwrap_or("?"),
                    c.image_digest.as_deref().unwrap_or("no digest")
                ),
                FIELD_MAX,
            )
        })
        .collect();
    let mut text = format!(
        "\n\n**Evidence (ECS):** task definition {}, started by {}, last status {}, containers: {}.",
        escape(&t.task_definition_arn, FIELD_MAX),
        escape(t.started_by.as_deref().unwrap_or("?"), FIELD_MAX),
        escape(t.last_status.as_str(), 20),
        if containers.is_empty() { "none".to_string() } else { containers.join("; ") },
    );
    if let Some(h) = host {
        text.push_str(&format!(
            " Host {} (container instance {}, {}).",
            h.instance_id, h.container_instance.arn, h.container_instance.status
        ));
    }
    text
}

pub(crate) fn finding_record(f: &Finding) -> Value {
    json!({
        "id": f.id,
        "type": f.finding_type,
        "severity": f.severity,
        "level": f.level().as_str(),
        "count": f.service.count,
        "first_seen": f.service.event_first_seen,
        "last_seen": f.service.event_last_seen,
        "sample": f.is_sample(),
        "arn": f.arn,
        "title": escape(&f.title, 500),
        "instance": f.instance_id(),
    })
}

/// The runtime part, escaped: it was written by whoever controls the container.
pub(crate) fn runtime_record(f: &Finding) -> Value {
    let esc = |s: &Option<String>| s.as_deref().map(|s| escape(s, FIELD_MAX));
    let process = f.process().map(|p| {
        json!({
            "name": esc(&p.name),
            "executable_path": esc(&p.executable_path),
            "executable_sha256": esc(&p.executable_sha256),
            "pid": p.pid,
            "user": esc(&p.user),
        })
    });
    json!({ "process": process, "context": context_record(f) })
}

fn context_record(f: &Finding) -> Map<String, Value> {
    let Some(context) = f
        .service
        .runtime_details
        .as_ref()
        .and_then(|r| r.context.as_ref())
    else {
        return Map::new();
    };
    context
        .iter()
        .take(12)
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (escape(k, 60), Value::String(escape(&text, FIELD_MAX)))
        })
        .collect()
}

/// One step of a response as its notification lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    pub action: &'static str,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What the step made (snapshot ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub made: Vec<String>,
}

/// The response's one notification: the plan's notice with every step tried (`steps`,
/// as `executed` ran them), the evidence kept, and the failure if one ended it; and the
/// response's overall outcome.
pub fn summary(
    plan: Plan,
    executed: &Executed,
    quarantine_group: Option<&str>,
) -> (Outcome, Notice) {
    let records: Vec<ActionRecord> = plan
        .steps
        .iter()
        .zip(&executed.results)
        .map(|(step, r)| ActionRecord {
            action: r.action,
            outcome: r.outcome,
            target: step.target(),
            why: match &r.error {
                // Evidence is worth a lot, but not the stop: its failure is tolerated.
                Some(e) if r.outcome == Outcome::Warning => {
                    Some(format!("{e}; the containment went on without it"))
                }
                Some(e) => Some(e.clone()),
                None => step.why().map(str::to_string),
            },
            made: r.made.clone(),
        })
        .collect();
    let outcome = overall(&plan, &records);
    let mut notice = plan.notice;
    if !records.is_empty() {
        notice.description.push_str("\n\n**Actions:**");
        for r in &records {
            notice.description.push_str(&format!(
                "\n- {} {}: {}{}",
                r.action,
                r.target,
                r.outcome.as_str(),
                r.why
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(e) = &executed.failure {
        notice.title = format!("FAILED: {}", notice.title);
        notice = notice
            .detail("error", e.to_string())
            .detail("retryable", e.is_retryable())
            .next_step("The event will be retried (the steps already done are recognised as done) and, if it keeps failing, dead-lettered: finish the remaining steps by hand.");
    }
    let notice = notice
        .detail(
            "evidence_taken",
            evidence_taken(&plan.steps, &records, quarantine_group),
        )
        .detail("actions", &records);
    (outcome, notice)
}

/// The machine-readable record of the evidence this response kept: the task described
/// before the stop, the snapshots (new or from an earlier delivery) and the isolated
/// network interfaces.
fn evidence_taken(
    steps: &[Step],
    records: &[ActionRecord],
    quarantine_group: Option<&str>,
) -> Value {
    let ok = |r: &ActionRecord| {
        matches!(
            r.outcome,
            Outcome::Done | Outcome::AlreadyDone | Outcome::Planned
        )
    };
    let mut snapshots: Vec<String> = vec![];
    let mut isolated: Vec<String> = vec![];
    let mut group = None;
    for (step, r) in steps.iter().zip(records) {
        match step {
            Step::Snapshot { .. } if ok(r) => snapshots.extend(r.made.iter().cloned()),
            Step::Isolate {
                network_interface_id,
                security_group,
            } if ok(r) => {
                isolated.push(network_interface_id.clone());
                group = Some(security_group.clone());
            }
            // Kept by an earlier delivery: still evidence of this response.
            _ if step.reports(SNAPSHOT_HOST, Outcome::AlreadyDone) => snapshots.extend(step.refs()),
            _ if step.reports(ISOLATE_NETWORK, Outcome::AlreadyDone) => {
                isolated.extend(step.refs());
                group = quarantine_group.map(str::to_string);
            }
            _ => {}
        }
    }
    let snapshot_outcome = records
        .iter()
        .find(|r| r.action == SNAPSHOT_HOST)
        .map(|r| r.outcome.as_str());
    json!({
        "task_described": records.iter().any(|r| r.action == STOP_TASK),
        "snapshots": snapshots,
        "snapshot_outcome": snapshot_outcome,
        "isolated_network_interfaces": isolated,
        "quarantine_security_group": group,
    })
}

/// The response's outcome: the worst step, or the plan's own when nothing had to run.
fn overall(plan: &Plan, records: &[ActionRecord]) -> Outcome {
    let acted: Vec<Outcome> = plan
        .steps
        .iter()
        .zip(records)
        .filter(|(s, _)| s.changes_something())
        .map(|(_, r)| r.outcome)
        .collect();
    if records.iter().any(|r| r.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if acted.is_empty() {
        plan.outcome
    } else if acted.contains(&Outcome::Planned) {
        Outcome::Planned
    } else if records.iter().any(|r| r.outcome == Outcome::Warning) {
        Outcome::Warning
    } else if acted.iter().all(|o| *o == Outcome::AlreadyDone) {
        Outcome::AlreadyDone
    } else {
        Outcome::Done
    }
}
