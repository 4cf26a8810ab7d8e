//! All of guardduty-responder's wording: turns decide's plans and their reasons ([`Why`],
//! [`Note`]) into the response act carries out, with its one notification (title,
//! description, details, next steps); the finding, the task and its host as a person
//! reads them; the notification of an attack sequence; and the texts AWS keeps (a
//! stopped task's reason, a snapshot's description).
//!
//! Everything that came from the finding's runtime part (process, paths, command lines)
//! is attacker controlled and passes through [`escape`] before it reaches a notice.

use serde::Serialize;
use serde_json::{json, Map, Value};
use shared::aws::autoscaling::LifecycleState;
use shared::aws::ecs::TaskEvidence;
use shared::events::guardduty::{Finding, Level};
use shared::exec::action::{ISOLATE_NETWORK, SNAPSHOT_HOST, STOP_TASK};
use shared::exec::Executed;
use shared::notify::{escape, Notice, Outcome, Severity};

use crate::act::Response;
use crate::decide::{
    family_of, task_arn, Floor, Host, Note, Observed, Plan, Step, Why, QUARANTINE_TAG,
    STOP_REASON_PREFIX,
};
use crate::parse::{SequenceThreat, Threat};
use crate::sequence::{self, Contained};

/// Longest piece of attacker-controlled text we put in front of a person.
pub(crate) const FIELD_MAX: usize = 200;

/// A decided plan, worded: the response act carries out and reports.
pub fn plan(threat: &Threat, seen: &Observed, plan: Plan) -> Response {
    Response {
        notice: notice(threat, seen, &plan),
        decided: plan,
    }
}

/// The response's notification before its steps ran: the finding, what ECS said about
/// the task and host, the decision and what to do next.
fn notice(threat: &Threat, seen: &Observed, plan: &Plan) -> Notice {
    let level = level_severity(threat.finding.level());
    let review = "Review the finding in the GuardDuty console and act by hand if needed.";
    let review_host = "Review the finding in the GuardDuty console and act on the host by hand.";
    match &plan.why {
        Why::Sample => notify(
            threat,
            Severity::Info,
            "sample finding, not acted on",
            "This is a GuardDuty sample finding (`additionalInfo.sample`); its resources are made up. Sample findings are reported and never acted on unless ACT_ON_SAMPLE_FINDINGS=true (for drills).".into(),
        ),
        Why::NotOptedIn => notify(
            threat,
            Severity::Info,
            "cluster not opted in, not acted on",
            format!(
                "Cluster {} does not carry the tag `ecs-autopilot:managed=true` (or is not in this account and region), so nothing in it is touched.",
                escape(&threat.cluster, FIELD_MAX)
            ),
        ),
        Why::TypeDenied { prefix } => notify(
            threat,
            level,
            "type denied, not acted on",
            format!(
                "FINDING_TYPES_DENY lists {}, so this finding is only reported.",
                escape(prefix, FIELD_MAX)
            ),
        )
        .next_step(review),
        Why::TypeNotAllowed => notify(
            threat,
            level,
            "type not allowed, not acted on",
            "FINDING_TYPES_ALLOW does not list this finding type, so it is only reported.".into(),
        )
        .next_step(review),
        Why::BelowMinSeverity { min_severity } => notify(
            threat,
            level,
            "below MIN_SEVERITY, notified only",
            format!(
                "Severity {} is below MIN_SEVERITY ({}), so this finding is only reported.",
                threat.finding.severity, min_severity
            ),
        )
        .next_step("Review the finding in the GuardDuty console; stop the task by hand if it is real."),
        Why::NoTaskNamed => notify(
            threat,
            level,
            "no task named, not acted on",
            "The finding names no task (`resource.ecsClusterDetails.taskDetails.arn`), so there is nothing to stop.".into(),
        ),
        Why::TaskNotFound => notify(
            threat,
            Severity::Warning,
            "task not found, nothing to stop",
            format!(
                "ECS does not know task {} in cluster {}: it stopped more than about an hour ago (ECS forgets stopped tasks), or it belongs to another account. Nothing was stopped.",
                escape(task_arn(&threat.finding).unwrap_or_default(), FIELD_MAX),
                escape(&threat.cluster, FIELD_MAX)
            ),
        )
        .next_step("If this is a new finding, look for the task in CloudTrail (RunTask/StartTask) and in the service's events."),
        Why::TaskContained { stopped_reason } => with_evidence(
            notify(
                threat,
                Severity::Info,
                "already contained",
                already_stopped(stopped_reason.as_deref()),
            ),
            seen,
        ),
        Why::TaskStopped { stopped_reason } => contain(
            threat,
            seen,
            level,
            &plan.steps,
            already_stopped(stopped_reason.as_deref()),
        ),
        Why::ServiceExcluded { service } => hold(
            threat,
            seen,
            level,
            "service excluded, not stopped",
            format!(
                "ACTION_EXCLUDE_SERVICES lists service {}.",
                escape(service, FIELD_MAX)
            ),
        ),
        Why::FamilyExcluded { family } => hold(
            threat,
            seen,
            level,
            "task family excluded, not stopped",
            format!(
                "ACTION_EXCLUDE_TASK_FAMILIES lists task definition family {}.",
                escape(family, FIELD_MAX)
            ),
        ),
        Why::BreakerTripped {
            service,
            stops,
            window_minutes,
            max_stops,
        } => hold(
            threat,
            seen,
            Severity::Critical,
            "crash-loop breaker tripped, not stopped",
            format!(
                "This function already stopped {stops} task(s) of service {} in the last {window_minutes} minutes (MAX_STOPS_PER_SERVICE={max_stops}). Its replacements keep producing findings, so the image or its configuration is likely compromised and stopping more tasks does not help; it stops acting on this service until the window passes.",
                escape(service, FIELD_MAX),
            ),
        )
        .detail("recent_stops", stops)
        .next_step(format!(
            "Decide now: scale service {} to zero, or roll it back to a known-good task definition. This is deliberately left to a person.",
            escape(service, FIELD_MAX)
        )),
        Why::HealthFloor(floor) => hold(
            threat,
            seen,
            level,
            "health floor, not stopped: needs a person",
            format!("{} Only Critical findings override the floor.", floor_text(floor)),
        )
        .detail("service_running", floor.running)
        .next_step("Stop the task by hand once the service has capacity (or add capacity first)."),
        Why::Threat => contain(
            threat,
            seen,
            level,
            &plan.steps,
            "The finding is at or above MIN_SEVERITY in an opted-in cluster.".into(),
        ),
        Why::FloorOverridden(floor) => contain(
            threat,
            seen,
            level,
            &plan.steps,
            format!(
                "{} The finding is Critical, so the task is stopped anyway.",
                floor_text(floor)
            ),
        ),
        Why::HostNotInCluster => notify(
            threat,
            Severity::Info,
            "host not in an opted-in cluster, not acted on",
            format!(
                "EC2 instance {} is not a container instance of cluster {}, so nothing is touched.",
                escape(threat.finding.instance_id().unwrap_or("?"), FIELD_MAX),
                escape(&threat.cluster, FIELD_MAX)
            ),
        )
        .next_step(review_host),
        Why::NothingApplies => with_evidence(
            notify(
                threat,
                level,
                "nothing done on the host",
                "No step applies (see the actions: isolation, snapshots and the quarantine are switched off or not possible here), so the host is only reported.".into(),
            ),
            seen,
        )
        .next_step(review_host),
        Why::HostContained {
            instance_id,
            quarantined_for,
        } => with_evidence(
            notify(
                threat,
                Severity::Info,
                "already contained",
                format!(
                    "Host {instance_id} is already contained{}: nothing was left to do (see the actions).",
                    quarantined_for
                        .as_deref()
                        .map(|f| format!(" (quarantined for finding {})", escape(f, FIELD_MAX)))
                        .unwrap_or_default()
                ),
            ),
            seen,
        ),
        Why::HostProcess => contain(
            threat,
            seen,
            level,
            &plan.steps,
            "A process ran on the host itself, outside any task, in an opted-in cluster: the host is isolated, its disks are snapshotted and it is taken out of service; its tasks are not stopped (draining moves service tasks away).".into(),
        ),
    }
}

fn already_stopped(stopped_reason: Option<&str>) -> String {
    format!(
        "The task was already stopped ({}).",
        escape(stopped_reason.unwrap_or("stop in progress"), FIELD_MAX)
    )
}

fn floor_text(floor: &Floor) -> String {
    format!(
        "Stopping it leaves service {} with {} running task(s), below MIN_HEALTHY_TASKS ({}).",
        escape(&floor.service, FIELD_MAX),
        (floor.running - 1).max(0),
        floor.min_healthy
    )
}

/// Why a step needed no call, as its line in the notification's actions says it.
pub fn note(note: &Note) -> String {
    match note {
        Note::IsolationOff => {
            "QUARANTINE_SECURITY_GROUP is not set: the network is left as it is.".into()
        }
        Note::NoInterface => {
            "No network interface of the task or its host is known, so nothing was isolated."
                .into()
        }
        Note::AlreadyIsolated { .. } => "Already in the quarantine security group alone.".into(),
        Note::SnapshotsOff => "SNAPSHOT_VOLUMES=false: no snapshot taken.".into(),
        Note::FargateVolumes => {
            "Fargate task: there are no EBS volumes of ours to snapshot.".into()
        }
        Note::SnapshotHostUnknown => "The host is unknown (its container instance is no longer registered), so no snapshot was taken.".into(),
        Note::AlreadySnapshotted { .. } => "Already taken for this finding.".into(),
        Note::FargateHost => "Fargate task: there is no host of ours to quarantine.".into(),
        Note::QuarantineOff => "QUARANTINE_HOST=false: the host is left as it is.".into(),
        Note::QuarantineHostUnknown => {
            "The task's container instance is no longer registered, so its host is unknown."
                .into()
        }
        Note::AlreadyQuarantined {
            instance_id,
            marked,
        } => format!(
            "Host {instance_id} is already DRAINING, outside any Auto Scaling group and tagged {QUARANTINE_TAG}={}.",
            escape(marked, FIELD_MAX)
        ),
        Note::AlreadyDraining => "The container instance is already DRAINING.".into(),
        Note::AlreadyTagged { marked } => format!(
            "Already tagged {QUARANTINE_TAG}={}.",
            escape(marked, FIELD_MAX)
        ),
        Note::NotInGroup => {
            "The instance is in no Auto Scaling group, so nothing can scale it in.".into()
        }
        Note::GroupNotOptedIn { group, cluster } => format!(
            "Auto Scaling group {group} is not opted in for cluster {cluster} (tag ecs-autopilot:cluster), so the instance was left in it: protect or detach it by hand to keep it."
        ),
        Note::NotDetachable { group, state } => format!(
            "The instance is {} in group {group}; only InService or Standby instances can be detached. If it is terminating, snapshot its volumes now or the evidence goes with it.",
            state
                .as_ref()
                .map_or("in an unknown state", LifecycleState::as_str),
        ),
        Note::AlreadyStopped { stopped_reason } => already_stopped(stopped_reason.as_deref()),
    }
}

/// The reason ECS records on a task we stop: [`STOP_REASON_PREFIX`] first, which is how
/// the crash-loop breaker counts our stops.
pub fn stop_reason(finding_id: &str, finding_type: &str) -> String {
    format!("{STOP_REASON_PREFIX} GuardDuty finding {finding_id} {finding_type}")
}

/// The description of the evidence snapshots of a host.
pub fn snapshot_description(instance_id: &str, finding_id: &str) -> String {
    format!(
        "ecs-autopilot guardduty-responder: evidence of {instance_id} for GuardDuty finding {finding_id}"
    )
}

/// What a step acts on, for the notification's list of actions.
fn target(step: &Step) -> String {
    match step {
        Step::Isolate {
            network_interface_id,
            security_group,
        } => format!("{network_interface_id} -> {security_group}"),
        Step::Snapshot { instance_id, .. } => instance_id.clone(),
        Step::StopTask { task_arn, .. } => task_arn.clone(),
        Step::SetDraining {
            container_instance_arn,
            ..
        } => container_instance_arn.clone(),
        Step::TagInstance { instance_id, .. } => instance_id.clone(),
        Step::Protect { group, instance_id } | Step::Detach { group, instance_id } => {
            format!("{instance_id} in {group}")
        }
        Step::Note(_) => step.refs().join(", "),
    }
}

fn level_severity(level: Level) -> Severity {
    match level {
        Level::Critical => Severity::Critical,
        Level::High => Severity::High,
        Level::Medium => Severity::Warning,
        Level::Low => Severity::Info,
    }
}

/// A notice that only tells people: the finding, and why nothing was done.
fn notify(threat: &Threat, severity: Severity, verdict: &str, why: String) -> Notice {
    let f = &threat.finding;
    let mut description = finding_text(threat);
    description.push_str(&format!("\n\n**Decision:** {why}"));
    Notice::new(severity, title(threat, None, verdict), description)
        .detail("finding", finding_record(f))
        .detail("runtime", runtime_record(f))
        .detail("decision", &why)
}

/// Adds what ECS said about the task (and its host) to a notice.
fn with_evidence(mut notice: Notice, seen: &Observed) -> Notice {
    if let Some(e) = &seen.task {
        notice
            .description
            .push_str(&task_text(e, seen.host.as_ref()));
        notice = notice.detail("evidence", e);
    }
    if let Some(h) = &seen.host {
        notice = notice.detail(
            "host",
            json!({
                "instance": h.instance_id,
                "container_instance": h.container_instance.arn,
                "container_instance_status": h.container_instance.status,
                "group": h.group.as_ref().map(|g| &g.name),
            }),
        );
    }
    notice
}

/// A finding that deserves action but is not acted on: a person has to decide.
fn hold(
    threat: &Threat,
    seen: &Observed,
    severity: Severity,
    verdict: &str,
    why: String,
) -> Notice {
    let mut notice = with_evidence(notify(threat, severity, verdict, why), seen);
    notice.title = title(threat, seen.task.as_ref(), verdict);
    notice.next_step("The task is still running: review the finding and the evidence, and stop it by hand if it is real.")
}

/// The notice of a response that acts: what it does, and what people do next.
fn contain(
    threat: &Threat,
    seen: &Observed,
    severity: Severity,
    steps: &[Step],
    why: String,
) -> Notice {
    let quarantined = steps.iter().any(|s| {
        matches!(
            s,
            Step::Detach { .. } | Step::SetDraining { .. } | Step::TagInstance { .. }
        )
    });
    let stops = steps.iter().any(|s| matches!(s, Step::StopTask { .. }));
    let isolated = steps.iter().any(|s| matches!(s, Step::Isolate { .. }));
    let snapshotted = steps.iter().any(|s| matches!(s, Step::Snapshot { .. }));
    let verdict = match (stops, quarantined, seen.task.is_some()) {
        (true, true, _) => "isolate, snapshot, stop task, quarantine host",
        (true, false, _) => "isolate, stop task",
        (false, _, false) => "isolate, snapshot, quarantine host",
        _ => "finish host quarantine",
    };
    let mut notice = with_evidence(notify(threat, severity, verdict, why), seen);
    notice.title = title(threat, seen.task.as_ref(), verdict);
    let evidence = seen.task.as_ref();
    let images: Vec<String> = evidence
        .map(|e| {
            e.containers
                .iter()
                .map(|c| {
                    escape(
                        &format!(
                            "{}@{}",
                            c.image.as_deref().unwrap_or("?"),
                            c.image_digest.as_deref().unwrap_or("no digest")
                        ),
                        FIELD_MAX,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if evidence.is_some() {
        notice = notice.next_step(format!(
            "Investigate what ran: image(s) {}; the task was described before it was stopped (details.evidence), since StopTask loses its tags.",
            if images.is_empty() { "unknown".to_string() } else { images.join(", ") }
        ));
    }
    let taken = match (isolated, snapshotted) {
        (true, true) => "Its network interfaces were moved to the quarantine security group and its EBS volumes snapshotted (tag ecs-autopilot:finding) before anything was stopped.",
        (true, false) => "Its network interfaces were moved to the quarantine security group before anything was stopped.",
        (false, true) => "Its EBS volumes were snapshotted (tag ecs-autopilot:finding) before anything was stopped; it is not isolated (QUARANTINE_SECURITY_GROUP).",
        (false, false) => "It is not isolated and no snapshot was taken now (see the actions).",
    };
    if let (true, Some(h)) = (quarantined, &seen.host) {
        notice = notice.next_step(format!(
            "Host {} is DRAINING, tagged {}={} and out of its Auto Scaling group (a replacement is launched). {taken} Capture memory if your tooling allows, and terminate it when the investigation is done.",
            h.instance_id,
            QUARANTINE_TAG,
            escape(h.quarantined_for.as_deref().unwrap_or(&threat.finding.id), FIELD_MAX)
        ));
    }
    if evidence.is_some() {
        notice = notice.next_step("If the image itself is compromised, roll the service back to a known-good task definition: replacements from the same image will be stopped again until the crash-loop breaker (MAX_STOPS_PER_SERVICE) trips.");
    }
    notice
}

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
    response: Response,
    executed: &Executed,
    quarantine_group: Option<&str>,
) -> (Outcome, Notice) {
    let Response {
        decided: plan,
        mut notice,
    } = response;
    let records: Vec<ActionRecord> = plan
        .steps
        .iter()
        .zip(&executed.results)
        .map(|(step, r)| ActionRecord {
            action: r.action,
            outcome: r.outcome,
            target: target(step),
            why: match &r.error {
                // Evidence is worth a lot, but not the stop: its failure is tolerated.
                Some(e) if r.outcome == Outcome::Warning => {
                    Some(format!("{e}; the containment went on without it"))
                }
                Some(e) => Some(e.clone()),
                None => match step {
                    Step::Note(n) => Some(note(n)),
                    _ => None,
                },
            },
            made: r.made.clone(),
        })
        .collect();
    let outcome = overall(&plan, &records);
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

/// The notification of an attack sequence: Critical, what GuardDuty correlated (its
/// signals), the tasks and hosts involved and what became of each; Info "already
/// contained" when a redelivery found everything done.
pub fn sequence(seq: &SequenceThreat, contained: &[Contained]) -> (Outcome, Notice) {
    let f = &seq.finding;
    let outcome = sequence::outcome(contained);
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
