//! Every read instance-drain makes, and what it found ([`Seen`], [`SpotHost`]). No
//! decision here: a lifecycle look's reads are asked for by `decide` ([`Read`]), one at
//! a time, so their order and their number are decide's.

use std::collections::{BTreeMap, BTreeSet};

use shared::aws::ecs::{ContainerInstance, ContainerInstanceStatus, Task};
use shared::events::ec2::InstanceWarning;
use shared::notify::Subject;
use shared::Result;

use crate::aws::{self, Hook, HostFacts};
use crate::parse::Progress;
use crate::{placement, Deps};

/// A read a lifecycle look needs before it can decide.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// The group's lifecycle hooks (DescribeLifecycleHooks).
    Hooks { group: String },
    /// Whether the host carries the quarantine tag (DescribeInstances).
    QuarantineTag { instance_id: String },
    /// The host's EC2 state, status checks and tags.
    HostFacts { instance_id: String },
    /// Whether the cluster carries the opt-in tag.
    Managed { cluster: String },
    /// The host's container instance, if it registered (a launch).
    ContainerInstance {
        cluster: String,
        instance_id: String,
    },
    /// The host's container instance and the tasks still on it.
    Host {
        cluster: String,
        instance_id: String,
        /// Boxed: it is most of the read's size.
        progress: Box<Progress>,
        /// A look at a drain in progress: measured (the drain metrics) once read.
        measured: bool,
    },
    /// What ECS says the container instance a re-check carries is.
    CarriedHost {
        cluster: String,
        container_instance_arn: String,
    },
}

/// What a lifecycle look has read so far, beyond the group (`None`: not read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub hooks: Option<Vec<Hook>>,
    pub quarantine_tag: Option<bool>,
    pub facts: Option<HostFacts>,
    pub managed: Option<bool>,
    pub container_instance: Option<Option<ContainerInstance>>,
    pub host: Option<HostState>,
    /// The EC2 instance ids ECS gives for the carried container instance.
    pub carried: Option<Vec<String>>,
}

/// What the cluster looks like for a host being drained.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostState {
    pub cluster: String,
    pub container_instance: Option<ContainerInstance>,
    /// Tasks on the host that have not reached STOPPED.
    pub tasks: Vec<Task>,
    /// Services on the host that use the DAEMON strategy.
    pub daemon_services: BTreeSet<String>,
    /// Services whose tasks ECS can never move off a draining host, and why (first look
    /// only).
    pub cannot_move: BTreeMap<String, String>,
    /// What EC2 says of the host (first look only).
    pub facts: HostFacts,
}

/// Makes `read` and records what it found in `seen`.
pub async fn read(deps: &Deps, read: Read, seen: &mut Seen) -> Result<()> {
    match read {
        Read::Hooks { group } => {
            seen.hooks = Some(aws::lifecycle_hooks(&deps.aws.asg, &group).await?);
        }
        Read::QuarantineTag { instance_id } => {
            let facts = aws::host_facts(&deps.aws.ec2, &instance_id, false).await?;
            seen.quarantine_tag = Some(facts.quarantined);
        }
        Read::HostFacts { instance_id } => {
            seen.facts = Some(aws::host_facts(&deps.aws.ec2, &instance_id, true).await?);
        }
        Read::Managed { cluster } => seen.managed = Some(deps.aws.ecs.is_managed(&cluster).await?),
        Read::ContainerInstance {
            cluster,
            instance_id,
        } => {
            let ci = deps
                .aws
                .ecs
                .find_container_instance(&cluster, &instance_id)
                .await?;
            seen.container_instance = Some(ci);
        }
        Read::Host {
            cluster,
            instance_id,
            progress,
            ..
        } => seen.host = Some(host(deps, &cluster, &instance_id, &progress).await?),
        Read::CarriedHost {
            cluster,
            container_instance_arn,
        } => {
            let described = deps
                .aws
                .ecs
                .describe_container_instances(&cluster, vec![container_instance_arn])
                .await?;
            seen.carried = Some(described.into_iter().map(|ci| ci.ec2_instance_id).collect());
        }
    }
    Ok(())
}

/// Reads the container instance and the tasks still on it.
async fn host(
    deps: &Deps,
    cluster: &str,
    instance_id: &str,
    progress: &Progress,
) -> Result<HostState> {
    let container_instance = match &progress.container_instance_arn {
        // On a re-check the instance is known; its tasks are all we need to read (a
        // re-check has four calls: heartbeat, the group, DescribeTasks, the re-queue).
        Some(arn) => Some(ContainerInstance {
            arn: arn.clone(),
            ec2_instance_id: instance_id.to_string(),
            status: ContainerInstanceStatus::Draining,
            agent_connected: true,
            running_tasks_count: 0,
            ami_id: None,
        }),
        None => {
            deps.aws
                .ecs
                .find_container_instance(cluster, instance_id)
                .await?
        }
    };
    let Some(ci) = container_instance else {
        return Ok(HostState {
            cluster: cluster.to_string(),
            ..HostState::default()
        });
    };
    let tasks = match &progress.blocking_tasks {
        // A DRAINING host gets no new tasks: describing those left is enough.
        Some(arns) if progress.container_instance_arn.is_some() => deps
            .aws
            .ecs
            .describe_tasks(cluster, arns)
            .await?
            .into_iter()
            .filter(|t| t.is_running() && t.container_instance_arn.as_deref() == Some(&ci.arn))
            .collect(),
        _ => deps.aws.ecs.tasks_on(cluster, &ci.arn).await?,
    };
    let mut daemon_services: BTreeSet<String> = progress.daemon_services.iter().cloned().collect();
    let unknown: Vec<String> = tasks
        .iter()
        .filter_map(|t| t.service())
        .filter(|s| {
            !daemon_services.contains(*s) && !progress.replica_services.iter().any(|r| r == s)
        })
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut cannot_move = BTreeMap::new();
    let mut constrained = vec![];
    if !unknown.is_empty() {
        for s in aws::services(&deps.aws.ecs, cluster, &unknown).await? {
            if s.daemon {
                daemon_services.insert(s.name);
            } else if s.cannot_move {
                cannot_move.insert(s.name, "maximumPercent 100 with minimumHealthyPercent 100: ECS may neither start a replacement first nor stop a task first".to_string());
            } else if s.desired_count > 0 {
                constrained.push(s);
            }
        }
    }
    // Placement constraints, on the first look only: the service's, its task
    // definition's, against the cluster's other hosts (read once, if any service has one).
    if progress.container_instance_arn.is_none() && !constrained.is_empty() {
        let mut others: Option<Vec<placement::Candidate>> = None;
        for mut s in constrained {
            if let Some(td) = &s.task_definition {
                s.constraints
                    .extend(aws::task_definition_constraints(&deps.aws.ecs, td).await?);
            }
            if s.constraints.is_empty() {
                continue;
            }
            if others.is_none() {
                others = Some(aws::other_hosts(&deps.aws.ecs, cluster, &ci.arn).await?);
            }
            let hosts = others.as_deref().unwrap_or_default();
            match placement::never_placed(&s.constraints, s.desired_count, hosts) {
                Some(why) => {
                    cannot_move.insert(s.name, format!("placement constraints {why}"));
                }
                None => {
                    tracing::debug!(service = %s.name, constraints = ?s.constraints, "placement constraints: another host can take its tasks, or that can't be told")
                }
            }
        }
    }
    Ok(HostState {
        cluster: cluster.to_string(),
        container_instance: Some(ci),
        tasks,
        daemon_services,
        cannot_move,
        facts: HostFacts::default(),
    })
}

/// A Spot host found in a managed cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotHost {
    pub cluster: String,
    pub container_instance: ContainerInstance,
    /// Tasks on it.
    pub tasks: usize,
}

/// Finds the managed cluster a Spot host is a container instance of: its group's tag,
/// or else each cluster tagged managed. `subject` learns the group and the cluster as
/// they are found (a failure later is reported with them).
pub async fn spot(
    deps: &Deps,
    warning: &InstanceWarning,
    subject: &mut Subject,
) -> Result<Option<SpotHost>> {
    let mut clusters = vec![];
    if let Some(group_name) = deps.aws.asg.group_of_instance(&warning.instance_id).await? {
        subject.about.group = Some(group_name.clone());
        if let Some(c) = deps
            .aws
            .asg
            .group(&group_name)
            .await?
            .as_ref()
            .and_then(|g| g.cluster())
        {
            clusters.push(c.to_string());
        }
    }
    // The cluster a group's tag names is checked for the opt-in tag; the listed clusters
    // were chosen by it, so each costs one call (the filtered ListContainerInstances).
    let listed = clusters.is_empty();
    if listed {
        clusters = deps.aws.ecs.managed_clusters().await?;
    }
    for cluster in clusters {
        if !listed && !deps.aws.ecs.is_managed(&cluster).await? {
            continue;
        }
        if let Some(ci) = deps
            .aws
            .ecs
            .find_container_instance(&cluster, &warning.instance_id)
            .await?
        {
            subject.about.cluster = Some(cluster.clone());
            let tasks = deps.aws.ecs.tasks_on(&cluster, &ci.arn).await?.len();
            return Ok(Some(SpotHost {
                cluster,
                container_instance: ci,
                tasks,
            }));
        }
    }
    Ok(None)
}
