//! The pure core: from a finding and what ECS and Auto Scaling say now, decide whether
//! to stop the task and quarantine its host, or only tell people, and why. No AWS calls
//! and no wording here: the plan is data (steps, with typed reasons, [`Why`] for the
//! response and [`Note`] for a step that needs no call, which `notices` words), so it is
//! logged, dry-run and asserted in tests.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::aws::autoscaling::LifecycleState;
use shared::aws::ec2::Interface;
use shared::aws::ecs::{ContainerInstance, ContainerInstanceStatus, TaskEvidence, TaskStatus};
use shared::events::guardduty::{Finding, Level};
use shared::exec::action::{
    DETACH_HOST, DRAIN_HOST, ISOLATE_NETWORK, PROTECT_HOST, SNAPSHOT_HOST, STOP_TASK, TAG_HOST,
};
use shared::notify::Outcome;

use crate::config::Config;
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

/// The action of a response that acts (or finds it already done).
pub const CONTAIN: &str = "contain";
/// The action of a response that only tells people.
pub const NOTIFY: &str = "notify";
/// The host's quarantine as a whole, when none of its steps can start.
pub const QUARANTINE_HOST: &str = "quarantine-host";

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
    /// Stopped with a reason naming the finding (after [`STOP_REASON_PREFIX`]).
    StopTask {
        cluster: String,
        task_arn: String,
        finding_id: String,
        finding_type: String,
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
    /// A step that needs no call: already done, or not possible here, and why. The
    /// response's one notification lists it with the others.
    Note(Note),
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
            Step::Note(n) => n.action(),
        }
    }

    pub fn changes_something(&self) -> bool {
        !matches!(self, Step::Note(_))
    }

    /// The evidence an earlier delivery kept, which a note is about.
    pub fn refs(&self) -> Vec<String> {
        match self {
            Step::Note(Note::AlreadyIsolated {
                network_interface_id,
            }) => vec![network_interface_id.clone()],
            Step::Note(Note::AlreadySnapshotted { snapshots }) => snapshots.clone(),
            _ => vec![],
        }
    }

    /// Whether this step is a note that says `outcome` of `action`.
    pub fn reports(&self, action: &str, outcome: Outcome) -> bool {
        matches!(self, Step::Note(n) if n.action() == action && n.outcome() == outcome)
    }
}

/// Why a step needs no call. Each belongs to one action with one outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// QUARANTINE_SECURITY_GROUP is not set.
    IsolationOff,
    /// No network interface of the task or its host is known.
    NoInterface,
    /// In the quarantine security group alone already (an earlier delivery moved it).
    AlreadyIsolated {
        network_interface_id: String,
    },
    /// SNAPSHOT_VOLUMES=false.
    SnapshotsOff,
    /// A Fargate task has no EBS volumes of ours.
    FargateVolumes,
    /// The host is unknown (its container instance is no longer registered).
    SnapshotHostUnknown,
    /// Taken for this finding by an earlier delivery.
    AlreadySnapshotted {
        snapshots: Vec<String>,
    },
    /// A Fargate task has no host of ours.
    FargateHost,
    /// QUARANTINE_HOST=false.
    QuarantineOff,
    /// The task's container instance is no longer registered.
    QuarantineHostUnknown,
    /// DRAINING, outside any group and tagged (`marked`: the finding on the tag).
    AlreadyQuarantined {
        instance_id: String,
        marked: String,
    },
    AlreadyDraining,
    /// Tagged by an earlier delivery, or for the first finding that quarantined it.
    AlreadyTagged {
        marked: String,
    },
    /// In no Auto Scaling group: nothing can scale it in.
    NotInGroup,
    /// The group does not carry the task's cluster in `ecs-autopilot:cluster`.
    GroupNotOptedIn {
        group: String,
        cluster: String,
    },
    /// Only InService or Standby instances can be detached (`None`: state unknown).
    NotDetachable {
        group: String,
        state: Option<LifecycleState>,
    },
    /// The task is stopped or stopping already (`stopped_reason`: ECS's, once it has one).
    AlreadyStopped {
        stopped_reason: Option<String>,
    },
}

impl Note {
    pub fn action(&self) -> &'static str {
        match self {
            Note::IsolationOff | Note::NoInterface | Note::AlreadyIsolated { .. } => {
                ISOLATE_NETWORK
            }
            Note::SnapshotsOff
            | Note::FargateVolumes
            | Note::SnapshotHostUnknown
            | Note::AlreadySnapshotted { .. } => SNAPSHOT_HOST,
            Note::FargateHost
            | Note::QuarantineOff
            | Note::QuarantineHostUnknown
            | Note::AlreadyQuarantined { .. } => QUARANTINE_HOST,
            Note::AlreadyDraining => DRAIN_HOST,
            Note::AlreadyTagged { .. } => TAG_HOST,
            Note::NotInGroup | Note::GroupNotOptedIn { .. } | Note::NotDetachable { .. } => {
                DETACH_HOST
            }
            Note::AlreadyStopped { .. } => STOP_TASK,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Note::IsolationOff
            | Note::SnapshotsOff
            | Note::FargateVolumes
            | Note::FargateHost
            | Note::QuarantineOff => Outcome::Skipped,
            Note::NoInterface
            | Note::SnapshotHostUnknown
            | Note::QuarantineHostUnknown
            | Note::GroupNotOptedIn { .. }
            | Note::NotDetachable { .. } => Outcome::Warning,
            Note::AlreadyIsolated { .. }
            | Note::AlreadySnapshotted { .. }
            | Note::AlreadyQuarantined { .. }
            | Note::AlreadyDraining
            | Note::AlreadyTagged { .. }
            | Note::NotInGroup
            | Note::AlreadyStopped { .. } => Outcome::AlreadyDone,
        }
    }
}

/// One response to one finding: what to do, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// [`CONTAIN`] when the plan acts (or found it already done), [`NOTIFY`] otherwise.
    pub action: &'static str,
    pub steps: Vec<Step>,
    /// The outcome when no step changes anything (skipped, already done).
    pub outcome: Outcome,
    pub why: Why,
}

impl Plan {
    pub fn changes_something(&self) -> bool {
        self.steps.iter().any(Step::changes_something)
    }

    /// Only tells people: nothing to do.
    fn notify(why: Why) -> Self {
        Plan {
            action: NOTIFY,
            steps: vec![],
            outcome: Outcome::Skipped,
            why,
        }
    }

    fn contain(steps: Vec<Step>, why: Why) -> Self {
        Plan {
            action: CONTAIN,
            steps,
            outcome: Outcome::Done,
            why,
        }
    }
}

/// Why a response is what it is. The finding, its task and host are beside it (the
/// threat and the observation); a reason carries what only the decision knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// A GuardDuty sample finding, and ACT_ON_SAMPLE_FINDINGS is off.
    Sample,
    /// The cluster is not tagged `ecs-autopilot:managed=true` (or not in this account).
    NotOptedIn,
    /// FINDING_TYPES_DENY lists `prefix` of the finding's type.
    TypeDenied { prefix: String },
    /// FINDING_TYPES_ALLOW does not list the finding's type.
    TypeNotAllowed,
    /// Below MIN_SEVERITY.
    BelowMinSeverity { min_severity: f64 },
    /// A Runtime Monitoring finding that names no task.
    NoTaskNamed,
    /// ECS does not know the task (any more).
    TaskNotFound,
    /// The task stopped already and its host needs nothing more.
    TaskContained { stopped_reason: Option<String> },
    /// The task stopped already; its host's quarantine is finished now.
    TaskStopped { stopped_reason: Option<String> },
    /// Held: ACTION_EXCLUDE_SERVICES lists the task's service.
    ServiceExcluded { service: String },
    /// Held: ACTION_EXCLUDE_TASK_FAMILIES lists the task's family.
    FamilyExcluded { family: String },
    /// Held: this function stopped `stops` tasks of the service within the window.
    BreakerTripped {
        service: String,
        stops: usize,
        window_minutes: i64,
        max_stops: usize,
    },
    /// Held: stopping the task takes the service below MIN_HEALTHY_TASKS.
    HealthFloor(Floor),
    /// At or above MIN_SEVERITY in an opted-in cluster: contained.
    Threat,
    /// Below the health floor, but the finding is Critical: contained anyway.
    FloorOverridden(Floor),
    /// A host finding for an instance that is no container instance of the cluster.
    HostNotInCluster,
    /// A host finding, and no step applies (all switched off or not possible).
    NothingApplies,
    /// A host finding for a host an earlier delivery contained.
    HostContained {
        instance_id: String,
        quarantined_for: Option<String>,
    },
    /// A process ran on the host itself: it is contained, its tasks are not stopped.
    HostProcess,
}

/// The health floor a stop would cross.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    pub service: String,
    /// The service's running tasks, this one included.
    pub running: i32,
    /// MIN_HEALTHY_TASKS.
    pub min_healthy: i32,
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
    let why = if f.is_sample() && !config.act_on_sample_findings {
        Why::Sample
    } else if !managed {
        Why::NotOptedIn
    } else if let Some(prefix) = config
        .types_deny
        .iter()
        .find(|p| f.finding_type.starts_with(p.as_str()))
    {
        Why::TypeDenied {
            prefix: prefix.clone(),
        }
    } else if !config.types_allow.is_empty()
        && !config
            .types_allow
            .iter()
            .any(|p| f.finding_type.starts_with(p.as_str()))
    {
        Why::TypeNotAllowed
    } else if f.severity < config.min_severity {
        Why::BelowMinSeverity {
            min_severity: config.min_severity,
        }
    } else if f.is_ecs_runtime() && task_arn(f).is_none() {
        Why::NoTaskNamed
    } else {
        return None;
    };
    Some(Plan::notify(why))
}

/// The response to a finding that passed [`screen`], given what ECS says now.
pub fn respond(threat: &Threat, seen: &Observed, config: &Config, now: DateTime<Utc>) -> Plan {
    let f = &threat.finding;
    let Some(evidence) = &seen.task else {
        return Plan::notify(Why::TaskNotFound);
    };
    let task = &evidence.task;
    let host_steps = quarantine(threat, seen, config);

    if !task.is_running() || task.desired_status == TaskStatus::Stopped {
        let stopped_reason = evidence.stopped_reason.clone();
        // The snapshots an earlier delivery took stay on the record (no new one: the
        // workload is gone, and someone else may have stopped it).
        let kept: Vec<Step> = seen
            .host
            .iter()
            .filter(|h| !h.snapshots.is_empty() && config.snapshot_volumes)
            .map(|_| snapshot(threat, seen, config))
            .collect();
        if !host_steps.iter().any(Step::changes_something) {
            return Plan {
                action: CONTAIN,
                steps: kept.into_iter().chain(host_steps).collect(),
                outcome: Outcome::AlreadyDone,
                why: Why::TaskContained { stopped_reason },
            };
        }
        // An earlier delivery stopped the task but did not finish the quarantine.
        let mut steps = kept;
        steps.push(Step::Note(Note::AlreadyStopped {
            stopped_reason: stopped_reason.clone(),
        }));
        steps.extend(host_steps);
        return Plan::contain(steps, Why::TaskStopped { stopped_reason });
    }

    let service = task.service();
    if let Some(s) = service.filter(|s| config.exclude_services.iter().any(|e| e == s)) {
        return Plan::notify(Why::ServiceExcluded {
            service: s.to_string(),
        });
    }
    let family = family_of(&task.task_definition_arn);
    if config.exclude_task_families.iter().any(|e| e == family) {
        return Plan::notify(Why::FamilyExcluded {
            family: family.to_string(),
        });
    }

    let mut why = Why::Threat;
    if let Some(service) = service {
        let stops = recent_stops(
            &seen.service_stopped,
            &task.arn,
            now,
            config.stop_window_minutes,
        );
        if stops >= config.max_stops_per_service {
            return Plan::notify(Why::BreakerTripped {
                service: service.to_string(),
                stops,
                window_minutes: config.stop_window_minutes,
                max_stops: config.max_stops_per_service,
            });
        }
        let running = seen.service_running.unwrap_or(0);
        if config.min_healthy_tasks > 0 && running - 1 < config.min_healthy_tasks {
            let floor = Floor {
                service: service.to_string(),
                running,
                min_healthy: config.min_healthy_tasks,
            };
            if f.level() < Level::Critical {
                return Plan::notify(Why::HealthFloor(floor));
            }
            why = Why::FloorOverridden(floor);
        }
    }

    // Cut off and record before the kill: a stopped container's memory is gone, and the
    // agent deletes its filesystem a few hours later.
    let mut steps = isolation(seen, config);
    steps.push(snapshot(threat, seen, config));
    steps.push(Step::StopTask {
        cluster: threat.cluster_ref.clone(),
        task_arn: task.arn.clone(),
        finding_id: f.id.clone(),
        finding_type: f.finding_type.clone(),
    });
    steps.extend(host_steps);
    Plan::contain(steps, why)
}

/// The response to a Runtime Monitoring finding about a host of an opted-in cluster
/// (passed [`screen`]): isolate and snapshot it, then quarantine it. Its tasks are not
/// stopped: DRAINING makes ECS move service tasks away under the services' own
/// deployment limits, and whatever else runs there stays cut off for forensics.
pub fn respond_host(threat: &Threat, seen: &Observed, config: &Config) -> Plan {
    let Some(host) = &seen.host else {
        return Plan::notify(Why::HostNotInCluster);
    };
    let mut steps = isolation(seen, config);
    steps.push(snapshot(threat, seen, config));
    steps.extend(quarantine_host(threat, Some(host), config));
    let done_before = steps
        .iter()
        .any(|s| matches!(s, Step::Note(n) if n.outcome() == Outcome::AlreadyDone));
    if !steps.iter().any(Step::changes_something) && !done_before {
        return Plan {
            steps,
            ..Plan::notify(Why::NothingApplies)
        };
    }
    if !steps.iter().any(Step::changes_something) {
        return Plan {
            action: CONTAIN,
            steps,
            outcome: Outcome::AlreadyDone,
            why: Why::HostContained {
                instance_id: host.instance_id.clone(),
                quarantined_for: host.quarantined_for.clone(),
            },
        };
    }
    Plan::contain(steps, Why::HostProcess)
}

/// The task's own network interface (awsvpc, Fargate included), else the host's (bridge
/// and host networking share the host's interfaces), moved to QUARANTINE_SECURITY_GROUP.
/// An interface already in that group alone (an earlier delivery moved it) is noted as
/// done, not moved again: its current groups are known for the host's interfaces (which
/// include an awsvpc task's own on EC2, unless trunked).
pub fn isolation(seen: &Observed, config: &Config) -> Vec<Step> {
    let Some(group) = &config.quarantine_security_group else {
        return vec![Step::Note(Note::IsolationOff)];
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
        return vec![Step::Note(Note::NoInterface)];
    }
    enis.into_iter()
        .map(|eni| {
            let isolated = host_interfaces
                .iter()
                .any(|i| i.id == eni && i.groups == std::slice::from_ref(group));
            match isolated {
                true => Step::Note(Note::AlreadyIsolated {
                    network_interface_id: eni,
                }),
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
        return Step::Note(Note::SnapshotsOff);
    }
    if is_fargate(seen) {
        return Step::Note(Note::FargateVolumes);
    }
    match &seen.host {
        None => Step::Note(Note::SnapshotHostUnknown),
        Some(h) if !h.snapshots.is_empty() => Step::Note(Note::AlreadySnapshotted {
            snapshots: h.snapshots.clone(),
        }),
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
        return vec![Step::Note(Note::FargateHost)];
    }
    quarantine_host(threat, seen.host.as_ref(), config)
}

/// The host steps for a known (or vanished) host; see [`quarantine`] for the order.
fn quarantine_host(threat: &Threat, host: Option<&Host>, config: &Config) -> Vec<Step> {
    if !config.quarantine_host {
        return vec![Step::Note(Note::QuarantineOff)];
    }
    let Some(host) = host else {
        return vec![Step::Note(Note::QuarantineHostUnknown)];
    };
    let draining = host.container_instance.status == ContainerInstanceStatus::Draining;
    if let (true, None, Some(marked)) = (draining, &host.group, &host.quarantined_for) {
        return vec![Step::Note(Note::AlreadyQuarantined {
            instance_id: host.instance_id.clone(),
            marked: marked.clone(),
        })];
    }
    let mut steps = vec![];
    if draining {
        steps.push(Step::Note(Note::AlreadyDraining));
    } else {
        steps.push(Step::SetDraining {
            cluster: threat.cluster_ref.clone(),
            container_instance_arn: host.container_instance.arn.clone(),
        });
    }
    // The first finding that quarantined the host keeps its mark: its snapshots and
    // notices carry that id, and a retry finds its own tag already there.
    match &host.quarantined_for {
        Some(marked) => steps.push(Step::Note(Note::AlreadyTagged {
            marked: marked.clone(),
        })),
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
        None => steps.push(Step::Note(Note::NotInGroup)),
        Some(g) if g.cluster_tag.as_deref() != Some(threat.cluster.as_str()) => {
            steps.push(Step::Note(Note::GroupNotOptedIn {
                group: g.name.clone(),
                cluster: threat.cluster.clone(),
            }))
        }
        Some(g)
            if !matches!(
                g.lifecycle_state,
                Some(LifecycleState::InService | LifecycleState::Standby)
            ) =>
        {
            steps.push(Step::Note(Note::NotDetachable {
                group: g.name.clone(),
                state: g.lifecycle_state.clone(),
            }))
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

/// The task a finding names, if it names one.
pub(crate) fn task_arn(f: &Finding) -> Option<&str> {
    f.task()?.arn.as_deref().filter(|a| !a.trim().is_empty())
}

#[cfg(test)]
pub(crate) mod tests;
