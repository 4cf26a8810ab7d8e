//! The pure core: from a finding and what ECS and Auto Scaling say now, decide whether
//! to stop the task and quarantine its host, or only tell people, and why. No AWS calls
//! here; the plan is data, so it is logged, dry-run and asserted in tests.
//!
//! Everything that came from the finding's runtime part (process, paths, command lines)
//! is attacker controlled and passes through [`escape`] before it reaches a notice.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use shared::aws::autoscaling::LifecycleState;
use shared::aws::ec2::Interface;
use shared::aws::ecs::{ContainerInstance, ContainerInstanceStatus, TaskEvidence, TaskStatus};
use shared::events::guardduty::{Finding, Level};
use shared::exec::action::{
    DETACH_HOST, DRAIN_HOST, ISOLATE_NETWORK, PROTECT_HOST, SNAPSHOT_HOST, STOP_TASK, TAG_HOST,
};
use shared::exec::{About, Report};
use shared::notify::{escape, Notice, Outcome, Severity};

use crate::config::Config;
use crate::notices::{finding_record, finding_text, runtime_record, task_text, title};
use crate::parse::Threat;

/// Every task this function stops carries this at the start of its stop reason, which is
/// how the crash-loop breaker finds our earlier stops in ECS's own task history.
pub const STOP_REASON_PREFIX: &str = "ecs-autopilot guardduty-responder:";
/// On a quarantined EC2 instance: the finding id that put it there.
pub const QUARANTINE_TAG: &str = "ecs-autopilot:quarantine";
/// On a quarantined EC2 instance: the finding type.
pub const QUARANTINE_TYPE_TAG: &str = "ecs-autopilot:quarantine-type";
/// On evidence snapshots: the finding id they were taken for (also how a redelivered
/// finding finds them again).
pub const FINDING_TAG: &str = "ecs-autopilot:finding";

/// Longest piece of attacker-controlled text we put in front of a person.
pub(crate) const FIELD_MAX: usize = 200;
/// The notice detail of a report step that names evidence kept earlier.
const REFS: &str = "refs";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Moves a network interface to the quarantine security group: the workload is cut
    /// off while its memory and disk are still intact.
    Isolate {
        network_interface_id: String,
        security_group: String,
    },
    /// Crash-consistent EBS snapshots of every volume of the host, tagged with the finding.
    Snapshot {
        instance_id: String,
        finding_id: String,
        finding_type: String,
    },
    StopTask {
        cluster: String,
        task_arn: String,
        reason: String,
    },
    /// Nothing new lands on the host; ECS moves its service tasks elsewhere.
    SetDraining {
        cluster: String,
        container_instance_arn: String,
    },
    TagInstance {
        instance_id: String,
        tags: Vec<(String, String)>,
    },
    /// Keeps the group from terminating the host in a scale-in until it is detached.
    Protect { group: String, instance_id: String },
    /// Out of the group without terminating; the group launches a replacement.
    Detach { group: String, instance_id: String },
    /// A step that needs no call: already done, or not possible here. Its notice says
    /// why (the description) and, for evidence an earlier delivery kept, what (detail
    /// `refs`: snapshot ids, isolated network interfaces); the response's one
    /// notification lists it with the others.
    Report(Report),
}

impl Step {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Isolate { .. } => ISOLATE_NETWORK,
            Step::Snapshot { .. } => SNAPSHOT_HOST,
            Step::StopTask { .. } => STOP_TASK,
            Step::SetDraining { .. } => DRAIN_HOST,
            Step::TagInstance { .. } => TAG_HOST,
            Step::Protect { .. } => PROTECT_HOST,
            Step::Detach { .. } => DETACH_HOST,
            Step::Report(r) => r.action,
        }
    }

    /// What the step acts on, for the notification's list of actions.
    pub fn target(&self) -> String {
        match self {
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
            Step::Report(_) => self.refs().join(", "),
        }
    }

    pub fn changes_something(&self) -> bool {
        !matches!(self, Step::Report(_))
    }

    /// A report's reason (`None` for a step that acts).
    pub fn why(&self) -> Option<&str> {
        match self {
            Step::Report(r) => Some(&r.notice.description),
            _ => None,
        }
    }

    /// The evidence an earlier delivery kept, which a report is about.
    pub fn refs(&self) -> Vec<String> {
        match self {
            Step::Report(r) => r
                .notice
                .details
                .get(REFS)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            _ => vec![],
        }
    }

    /// Whether this step's report says `outcome` of `action`.
    pub fn reports(&self, action: &str, outcome: Outcome) -> bool {
        matches!(self, Step::Report(r) if r.action == action && r.outcome == outcome)
    }
}

/// One response to one finding, reported as one notification listing every step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// `contain` when the plan acts (or found it already done), `notify` otherwise.
    pub action: &'static str,
    pub steps: Vec<Step>,
    /// The outcome when no step changes anything (skipped, already done).
    pub outcome: Outcome,
    pub notice: Notice,
}

impl Plan {
    pub fn changes_something(&self) -> bool {
        self.steps.iter().any(Step::changes_something)
    }
}

/// The host a task runs on, as ECS and Auto Scaling see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub instance_id: String,
    pub container_instance: ContainerInstance,
    /// `None` when the instance is in no Auto Scaling group (detached already, or never).
    pub group: Option<HostGroup>,
    /// The instance's network interfaces (what bridge and host networking tasks use),
    /// with the security groups they are in now.
    pub network_interfaces: Vec<Interface>,
    /// Our snapshots already tagged with this finding's id.
    pub snapshots: Vec<String>,
    /// The instance's `ecs-autopilot:quarantine` tag: the finding it was quarantined
    /// for, by an earlier delivery or an earlier finding.
    pub quarantined_for: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostGroup {
    pub name: String,
    /// The group's `ecs-autopilot:cluster` tag.
    pub cluster_tag: Option<String>,
    /// The instance's lifecycle state in the group (InService, Terminating:Wait, ...).
    pub lifecycle_state: Option<LifecycleState>,
}

/// What the decision needs to know beyond the finding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The task as ECS describes it now; `None` when ECS does not know it (any more).
    pub task: Option<TaskEvidence>,
    /// Running tasks of the task's service, this one included.
    pub service_running: Option<i32>,
    /// Stopped tasks of the task's service that ECS still remembers.
    pub service_stopped: Vec<TaskEvidence>,
    pub host: Option<Host>,
}

/// Decisions that need nothing but the finding and whether its cluster opted in.
pub fn screen(threat: &Threat, managed: bool, config: &Config) -> Option<Plan> {
    let f = &threat.finding;
    if f.is_sample() && !config.act_on_sample_findings {
        return Some(notify(
            threat,
            Severity::Info,
            "sample finding, not acted on",
            "This is a GuardDuty sample finding (`additionalInfo.sample`); its resources are made up. Sample findings are reported and never acted on unless ACT_ON_SAMPLE_FINDINGS=true (for drills).".into(),
        ));
    }
    if !managed {
        return Some(notify(
            threat,
            Severity::Info,
            "cluster not opted in, not acted on",
            format!(
                "Cluster {} does not carry the tag `ecs-autopilot:managed=true` (or is not in this account and region), so nothing in it is touched.",
                escape(&threat.cluster, FIELD_MAX)
            ),
        ));
    }
    let level = level_severity(f.level());
    if let Some(prefix) = config
        .types_deny
        .iter()
        .find(|p| f.finding_type.starts_with(p.as_str()))
    {
        return Some(
            notify(
                threat,
                level,
                "type denied, not acted on",
                format!(
                    "FINDING_TYPES_DENY lists {}, so this finding is only reported.",
                    escape(prefix, FIELD_MAX)
                ),
            )
            .with_step("Review the finding in the GuardDuty console and act by hand if needed."),
        );
    }
    if !config.types_allow.is_empty()
        && !config
            .types_allow
            .iter()
            .any(|p| f.finding_type.starts_with(p.as_str()))
    {
        return Some(
            notify(
                threat,
                level,
                "type not allowed, not acted on",
                "FINDING_TYPES_ALLOW does not list this finding type, so it is only reported."
                    .into(),
            )
            .with_step("Review the finding in the GuardDuty console and act by hand if needed."),
        );
    }
    if f.severity < config.min_severity {
        return Some(
            notify(
                threat,
                level,
                "below MIN_SEVERITY, notified only",
                format!(
                    "Severity {} is below MIN_SEVERITY ({}), so this finding is only reported.",
                    f.severity, config.min_severity
                ),
            )
            .with_step(
                "Review the finding in the GuardDuty console; stop the task by hand if it is real.",
            ),
        );
    }
    if f.is_ecs_runtime() && task_arn(f).is_none() {
        return Some(notify(
            threat,
            level,
            "no task named, not acted on",
            "The finding names no task (`resource.ecsClusterDetails.taskDetails.arn`), so there is nothing to stop.".into(),
        ));
    }
    None
}

/// The response to a finding that passed [`screen`], given what ECS says now.
pub fn respond(threat: &Threat, seen: &Observed, config: &Config, now: DateTime<Utc>) -> Plan {
    let f = &threat.finding;
    let level = level_severity(f.level());
    let Some(evidence) = &seen.task else {
        return notify(
            threat,
            Severity::Warning,
            "task not found, nothing to stop",
            format!(
                "ECS does not know task {} in cluster {}: it stopped more than about an hour ago (ECS forgets stopped tasks), or it belongs to another account. Nothing was stopped.",
                escape(task_arn(f).unwrap_or_default(), FIELD_MAX),
                escape(&threat.cluster, FIELD_MAX)
            ),
        )
        .with_step("If this is a new finding, look for the task in CloudTrail (RunTask/StartTask) and in the service's events.");
    };
    let task = &evidence.task;
    let host_steps = quarantine(threat, seen, config);

    if !task.is_running() || task.desired_status == TaskStatus::Stopped {
        let why = format!(
            "The task was already stopped ({}).",
            escape(
                evidence
                    .stopped_reason
                    .as_deref()
                    .unwrap_or("stop in progress"),
                FIELD_MAX
            )
        );
        // The snapshots an earlier delivery took stay on the record (no new one: the
        // workload is gone, and someone else may have stopped it).
        let kept: Vec<Step> = seen
            .host
            .iter()
            .filter(|h| !h.snapshots.is_empty() && config.snapshot_volumes)
            .map(|_| snapshot(threat, seen, config))
            .collect();
        if !host_steps.iter().any(Step::changes_something) {
            let mut plan = with_evidence(
                notify(threat, Severity::Info, "already contained", why),
                seen,
            );
            plan.action = "contain";
            plan.outcome = Outcome::AlreadyDone;
            plan.steps = kept.into_iter().chain(host_steps).collect();
            return plan;
        }
        // An earlier delivery stopped the task but did not finish the quarantine.
        let mut steps = kept;
        steps.push(note("stop-task", Outcome::AlreadyDone, &why));
        steps.extend(host_steps);
        return contain(threat, seen, level, steps, why);
    }

    let service = task.service();
    if let Some(s) = service.filter(|s| config.exclude_services.iter().any(|e| e == s)) {
        return hold(
            threat,
            seen,
            level,
            "service excluded, not stopped",
            format!(
                "ACTION_EXCLUDE_SERVICES lists service {}.",
                escape(s, FIELD_MAX)
            ),
        );
    }
    let family = family_of(&task.task_definition_arn);
    if config.exclude_task_families.iter().any(|e| e == family) {
        return hold(
            threat,
            seen,
            level,
            "task family excluded, not stopped",
            format!(
                "ACTION_EXCLUDE_TASK_FAMILIES lists task definition family {}.",
                escape(family, FIELD_MAX)
            ),
        );
    }

    let mut why = String::from("The finding is at or above MIN_SEVERITY in an opted-in cluster.");
    if let Some(service) = service {
        let stops = recent_stops(
            &seen.service_stopped,
            &task.arn,
            now,
            config.stop_window_minutes,
        );
        if stops >= config.max_stops_per_service {
            let mut plan = hold(
                threat,
                seen,
                Severity::Critical,
                "crash-loop breaker tripped, not stopped",
                format!(
                    "This function already stopped {stops} task(s) of service {} in the last {} minutes (MAX_STOPS_PER_SERVICE={}). Its replacements keep producing findings, so the image or its configuration is likely compromised and stopping more tasks does not help; it stops acting on this service until the window passes.",
                    escape(service, FIELD_MAX),
                    config.stop_window_minutes,
                    config.max_stops_per_service
                ),
            );
            plan.notice = plan
                .notice
                .detail("recent_stops", stops)
                .next_step(format!(
                    "Decide now: scale service {} to zero, or roll it back to a known-good task definition. This is deliberately left to a person.",
                    escape(service, FIELD_MAX)
                ));
            return plan;
        }
        let running = seen.service_running.unwrap_or(0);
        let left = running - 1;
        if config.min_healthy_tasks > 0 && left < config.min_healthy_tasks {
            let floor = format!(
                "Stopping it leaves service {} with {} running task(s), below MIN_HEALTHY_TASKS ({}).",
                escape(service, FIELD_MAX),
                left.max(0),
                config.min_healthy_tasks
            );
            if f.level() < Level::Critical {
                let mut plan = hold(
                    threat,
                    seen,
                    level,
                    "health floor, not stopped: needs a person",
                    format!("{floor} Only Critical findings override the floor."),
                );
                plan.notice = plan.notice.detail("service_running", running).next_step(
                    "Stop the task by hand once the service has capacity (or add capacity first).",
                );
                return plan;
            }
            why = format!("{floor} The finding is Critical, so the task is stopped anyway.");
        }
    }

    // Cut off and record before the kill: a stopped container's memory is gone, and the
    // agent deletes its filesystem a few hours later.
    let mut steps = isolation(seen, config);
    steps.push(snapshot(threat, seen, config));
    steps.push(Step::StopTask {
        cluster: threat.cluster_ref.clone(),
        task_arn: task.arn.clone(),
        reason: format!(
            "{STOP_REASON_PREFIX} GuardDuty finding {} {}",
            f.id, f.finding_type
        ),
    });
    steps.extend(host_steps);
    contain(threat, seen, level, steps, why)
}

/// The response to a Runtime Monitoring finding about a host of an opted-in cluster
/// (passed [`screen`]): isolate and snapshot it, then quarantine it. Its tasks are not
/// stopped: DRAINING makes ECS move service tasks away under the services' own
/// deployment limits, and whatever else runs there stays cut off for forensics.
pub fn respond_host(threat: &Threat, seen: &Observed, config: &Config) -> Plan {
    let level = level_severity(threat.finding.level());
    let Some(host) = &seen.host else {
        return notify(
            threat,
            Severity::Info,
            "host not in an opted-in cluster, not acted on",
            format!(
                "EC2 instance {} is not a container instance of cluster {}, so nothing is touched.",
                escape(threat.finding.instance_id().unwrap_or("?"), FIELD_MAX),
                escape(&threat.cluster, FIELD_MAX)
            ),
        )
        .with_step("Review the finding in the GuardDuty console and act on the host by hand.");
    };
    let mut steps = isolation(seen, config);
    steps.push(snapshot(threat, seen, config));
    steps.extend(quarantine_host(threat, Some(host), config));
    let done_before = steps.iter().any(|s| {
        matches!(
            s,
            Step::Report(Report {
                outcome: Outcome::AlreadyDone,
                ..
            })
        )
    });
    if !steps.iter().any(Step::changes_something) && !done_before {
        let mut plan = with_evidence(
            notify(
                threat,
                level,
                "nothing done on the host",
                "No step applies (see the actions: isolation, snapshots and the quarantine are switched off or not possible here), so the host is only reported.".into(),
            ),
            seen,
        );
        plan.steps = steps;
        return plan
            .with_step("Review the finding in the GuardDuty console and act on the host by hand.");
    }
    if !steps.iter().any(Step::changes_something) {
        let mut plan = with_evidence(
            notify(
                threat,
                Severity::Info,
                "already contained",
                format!(
                    "Host {} is already contained{}: nothing was left to do (see the actions).",
                    host.instance_id,
                    host.quarantined_for
                        .as_deref()
                        .map(|f| format!(" (quarantined for finding {})", escape(f, FIELD_MAX)))
                        .unwrap_or_default()
                ),
            ),
            seen,
        );
        plan.action = "contain";
        plan.outcome = Outcome::AlreadyDone;
        plan.steps = steps;
        return plan;
    }
    contain(
        threat,
        seen,
        level,
        steps,
        "A process ran on the host itself, outside any task, in an opted-in cluster: the host is isolated, its disks are snapshotted and it is taken out of service; its tasks are not stopped (draining moves service tasks away).".into(),
    )
}

/// The task's own network interface (awsvpc, Fargate included), else the host's (bridge
/// and host networking share the host's interfaces), moved to QUARANTINE_SECURITY_GROUP.
/// An interface already in that group alone (an earlier delivery moved it) is noted as
/// done, not moved again: its current groups are known for the host's interfaces (which
/// include an awsvpc task's own on EC2, unless trunked).
pub fn isolation(seen: &Observed, config: &Config) -> Vec<Step> {
    let Some(group) = &config.quarantine_security_group else {
        return vec![note(
            "isolate-network",
            Outcome::Skipped,
            "QUARANTINE_SECURITY_GROUP is not set: the network is left as it is.",
        )];
    };
    let host_interfaces: &[Interface] = seen
        .host
        .as_ref()
        .map_or(&[], |h| h.network_interfaces.as_slice());
    let task_enis: Vec<String> = seen
        .task
        .iter()
        .flat_map(|e| &e.attachments)
        .filter(|a| a.kind == "ElasticNetworkInterface")
        .filter_map(|a| a.details.get("networkInterfaceId").cloned())
        .collect();
    let enis = if !task_enis.is_empty() {
        task_enis
    } else if is_fargate(seen) {
        vec![]
    } else {
        host_interfaces.iter().map(|i| i.id.clone()).collect()
    };
    if enis.is_empty() {
        return vec![note(
            "isolate-network",
            Outcome::Warning,
            "No network interface of the task or its host is known, so nothing was isolated.",
        )];
    }
    enis.into_iter()
        .map(|eni| {
            let isolated = host_interfaces
                .iter()
                .any(|i| i.id == eni && i.groups == std::slice::from_ref(group));
            match isolated {
                true => note_on(
                    "isolate-network",
                    Outcome::AlreadyDone,
                    "Already in the quarantine security group alone.",
                    vec![eni],
                ),
                false => Step::Isolate {
                    network_interface_id: eni,
                    security_group: group.clone(),
                },
            }
        })
        .collect()
}

/// EBS snapshots of the host's volumes, once per finding (SNAPSHOT_VOLUMES).
pub fn snapshot(threat: &Threat, seen: &Observed, config: &Config) -> Step {
    if !config.snapshot_volumes {
        return note(
            "snapshot-host",
            Outcome::Skipped,
            "SNAPSHOT_VOLUMES=false: no snapshot taken.",
        );
    }
    if is_fargate(seen) {
        return note(
            "snapshot-host",
            Outcome::Skipped,
            "Fargate task: there are no EBS volumes of ours to snapshot.",
        );
    }
    match &seen.host {
        None => note(
            "snapshot-host",
            Outcome::Warning,
            "The host is unknown (its container instance is no longer registered), so no snapshot was taken.",
        ),
        Some(h) if !h.snapshots.is_empty() => note_on(
            "snapshot-host",
            Outcome::AlreadyDone,
            "Already taken for this finding.",
            h.snapshots.clone(),
        ),
        Some(h) => Step::Snapshot {
            instance_id: h.instance_id.clone(),
            finding_id: threat.finding.id.clone(),
            finding_type: threat.finding.finding_type.clone(),
        },
    }
}

fn is_fargate(seen: &Observed) -> bool {
    seen.task.as_ref().is_some_and(|e| {
        e.task
            .launch_type
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("FARGATE"))
            || e.task.container_instance_arn.is_none()
    })
}

/// The host steps, in the order that keeps the evidence: DRAINING first (nothing new
/// lands there, ECS moves service tasks away), the tag next (the marker people and the
/// other functions see, so a later failure still leaves the host marked), then
/// protection while it is still in the group (a scale-in between our calls must not
/// pick it), and detach last, without decrementing, so the group replaces the capacity
/// and can never scale the instance in again.
pub fn quarantine(threat: &Threat, seen: &Observed, config: &Config) -> Vec<Step> {
    if seen.task.is_none() {
        return vec![];
    }
    if is_fargate(seen) {
        return vec![note(
            "quarantine-host",
            Outcome::Skipped,
            "Fargate task: there is no host of ours to quarantine.",
        )];
    }
    quarantine_host(threat, seen.host.as_ref(), config)
}

/// The host steps for a known (or vanished) host; see [`quarantine`] for the order.
fn quarantine_host(threat: &Threat, host: Option<&Host>, config: &Config) -> Vec<Step> {
    if !config.quarantine_host {
        return vec![note(
            "quarantine-host",
            Outcome::Skipped,
            "QUARANTINE_HOST=false: the host is left as it is.",
        )];
    }
    let Some(host) = host else {
        return vec![note(
            "quarantine-host",
            Outcome::Warning,
            "The task's container instance is no longer registered, so its host is unknown.",
        )];
    };
    let draining = host.container_instance.status == ContainerInstanceStatus::Draining;
    if let (true, None, Some(marked)) = (draining, &host.group, &host.quarantined_for) {
        return vec![note(
            "quarantine-host",
            Outcome::AlreadyDone,
            &format!(
                "Host {} is already DRAINING, outside any Auto Scaling group and tagged {QUARANTINE_TAG}={}.",
                host.instance_id,
                escape(marked, FIELD_MAX)
            ),
        )];
    }
    let mut steps = vec![];
    if draining {
        steps.push(note(
            "drain-host",
            Outcome::AlreadyDone,
            "The container instance is already DRAINING.",
        ));
    } else {
        steps.push(Step::SetDraining {
            cluster: threat.cluster_ref.clone(),
            container_instance_arn: host.container_instance.arn.clone(),
        });
    }
    // The first finding that quarantined the host keeps its mark: its snapshots and
    // notices carry that id, and a retry finds its own tag already there.
    match &host.quarantined_for {
        Some(marked) => steps.push(note(
            "tag-host",
            Outcome::AlreadyDone,
            &format!(
                "Already tagged {QUARANTINE_TAG}={}.",
                escape(marked, FIELD_MAX)
            ),
        )),
        None => steps.push(Step::TagInstance {
            instance_id: host.instance_id.clone(),
            tags: vec![
                (QUARANTINE_TAG.into(), threat.finding.id.clone()),
                (
                    QUARANTINE_TYPE_TAG.into(),
                    threat.finding.finding_type.clone(),
                ),
            ],
        }),
    }
    match &host.group {
        None => steps.push(note(
            "detach-host",
            Outcome::AlreadyDone,
            "The instance is in no Auto Scaling group, so nothing can scale it in.",
        )),
        Some(g) if g.cluster_tag.as_deref() != Some(threat.cluster.as_str()) => steps.push(note(
            "detach-host",
            Outcome::Warning,
            &format!(
                "Auto Scaling group {} is not opted in for cluster {} (tag ecs-autopilot:cluster), so the instance was left in it: protect or detach it by hand to keep it.",
                g.name, threat.cluster
            ),
        )),
        Some(g)
            if !matches!(
                g.lifecycle_state,
                Some(LifecycleState::InService | LifecycleState::Standby)
            ) =>
        {
            steps.push(note(
                "detach-host",
                Outcome::Warning,
                &format!(
                    "The instance is {} in group {}; only InService or Standby instances can be detached. If it is terminating, snapshot its volumes now or the evidence goes with it.",
                    g.lifecycle_state
                        .as_ref()
                        .map_or("in an unknown state", LifecycleState::as_str),
                    g.name
                ),
            ))
        }
        Some(g) => {
            steps.push(Step::Protect {
                group: g.name.clone(),
                instance_id: host.instance_id.clone(),
            });
            steps.push(Step::Detach {
                group: g.name.clone(),
                instance_id: host.instance_id.clone(),
            });
        }
    }
    steps
}

/// How many tasks of the service this function stopped within the window, from ECS's
/// own history (stop reason prefix). A stop without a time counts: ECS only remembers
/// the last hour anyway, and counting too many trips the breaker early, which is safe.
pub fn recent_stops(
    stopped: &[TaskEvidence],
    current_task: &str,
    now: DateTime<Utc>,
    window_minutes: i64,
) -> usize {
    let since = now - Duration::minutes(window_minutes);
    stopped
        .iter()
        .filter(|t| t.task.arn != current_task)
        .filter(|t| {
            t.stopped_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(STOP_REASON_PREFIX))
        })
        .filter(|t| t.stopped_at.is_none_or(|at| at >= since))
        .count()
}

pub(crate) fn family_of(task_definition_arn: &str) -> &str {
    let name = task_definition_arn
        .rsplit_once('/')
        .map_or(task_definition_arn, |(_, n)| n);
    name.split_once(':').map_or(name, |(f, _)| f)
}

fn task_arn(f: &Finding) -> Option<&str> {
    f.task()?.arn.as_deref().filter(|a| !a.trim().is_empty())
}

fn level_severity(level: Level) -> Severity {
    match level {
        Level::Critical => Severity::Critical,
        Level::High => Severity::High,
        Level::Medium => Severity::Warning,
        Level::Low => Severity::Info,
    }
}

fn note(action: &'static str, outcome: Outcome, why: &str) -> Step {
    note_on(action, outcome, why, vec![])
}

/// A note about evidence an earlier delivery kept (`refs`: its ids).
pub(crate) fn note_on(
    action: &'static str,
    outcome: Outcome,
    why: &str,
    refs: Vec<String>,
) -> Step {
    let mut notice = Notice::info(action, why);
    if !refs.is_empty() {
        notice = notice.detail(REFS, refs);
    }
    Step::Report(Report {
        action,
        outcome,
        about: About::default(),
        notice,
    })
}

impl Plan {
    fn with_step(mut self, step: &str) -> Self {
        self.notice = self.notice.next_step(step);
        self
    }
}

/// A plan that only tells people: the finding, and why nothing was done.
fn notify(threat: &Threat, severity: Severity, verdict: &str, why: String) -> Plan {
    let f = &threat.finding;
    let mut description = finding_text(threat);
    description.push_str(&format!("\n\n**Decision:** {why}"));
    let notice = Notice::new(severity, title(threat, None, verdict), description)
        .detail("finding", finding_record(f))
        .detail("runtime", runtime_record(f))
        .detail("decision", &why);
    Plan {
        action: "notify",
        steps: vec![],
        outcome: Outcome::Skipped,
        notice,
    }
}

/// Adds what ECS said about the task (and its host) to a plan's notice.
fn with_evidence(mut plan: Plan, seen: &Observed) -> Plan {
    if let Some(e) = &seen.task {
        plan.notice
            .description
            .push_str(&task_text(e, seen.host.as_ref()));
        plan.notice = plan.notice.detail("evidence", e);
    }
    if let Some(h) = &seen.host {
        plan.notice = plan.notice.detail(
            "host",
            json!({
                "instance": h.instance_id,
                "container_instance": h.container_instance.arn,
                "container_instance_status": h.container_instance.status,
                "group": h.group.as_ref().map(|g| &g.name),
            }),
        );
    }
    plan
}

/// A finding that deserves action but is not acted on: a person has to decide.
fn hold(threat: &Threat, seen: &Observed, severity: Severity, verdict: &str, why: String) -> Plan {
    let mut plan = with_evidence(notify(threat, severity, verdict, why), seen);
    plan.notice.title = title(threat, seen.task.as_ref(), verdict);
    plan.with_step("The task is still running: review the finding and the evidence, and stop it by hand if it is real.")
}

fn contain(
    threat: &Threat,
    seen: &Observed,
    severity: Severity,
    steps: Vec<Step>,
    why: String,
) -> Plan {
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
    let mut plan = with_evidence(notify(threat, severity, verdict, why), seen);
    plan.notice.title = title(threat, seen.task.as_ref(), verdict);
    plan.action = "contain";
    plan.outcome = Outcome::Done;
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
        plan = plan.with_step(&format!(
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
        plan = plan.with_step(&format!(
            "Host {} is DRAINING, tagged {}={} and out of its Auto Scaling group (a replacement is launched). {taken} Capture memory if your tooling allows, and terminate it when the investigation is done.",
            h.instance_id,
            QUARANTINE_TAG,
            escape(h.quarantined_for.as_deref().unwrap_or(&threat.finding.id), FIELD_MAX)
        ));
    }
    if evidence.is_some() {
        plan = plan.with_step("If the image itself is compromised, roll the service back to a known-good task definition: replacements from the same image will be stopped again until the crash-loop breaker (MAX_STOPS_PER_SERVICE) trips.");
    }
    plan.with_steps(steps)
}

impl Plan {
    fn with_steps(mut self, steps: Vec<Step>) -> Self {
        self.steps = steps;
        self
    }
}

#[cfg(test)]
mod tests;
