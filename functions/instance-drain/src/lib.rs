//! instance-drain: drains ECS container instances before Auto Scaling (or a spot
//! interruption) takes them away, and admits launching instances only once they have
//! joined their cluster.
//!
//! parse (event → intent) → observe (read the cluster) → decide (pure plan) → act.

pub mod act;
pub mod config;
pub mod decide;
pub mod parse;

use chrono::Utc;
use shared::aws::autoscaling::AutoScaling;
use shared::aws::ecs::Ecs;
use shared::aws::sqs::Queue;
use shared::events::autoscaling::{LifecycleAction, Transition};
use shared::events::ec2::InstanceWarning;
use shared::events::Envelope;
use shared::notify::{Reporter, Subject};
use shared::Result;

use act::Target;
use config::Config;
use decide::{HostState, Step};
use parse::{Intent, Progress};

/// Everything the handler needs from the world, built once per cold start.
pub struct Deps {
    pub config: Config,
    pub ecs: Ecs,
    pub asg: AutoScaling,
    pub queue: Queue,
    pub reporter: Reporter,
}

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event)?;
    let mut subject = Subject {
        event_id: event.id.clone(),
        kind: intent.kind().to_string(),
        ..Subject::default()
    };
    let (plan, lifecycle) = match &intent {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            return Ok(());
        }
        Intent::Lifecycle { action, progress } => {
            subject.group = Some(action.group.clone());
            subject.instance = Some(action.instance_id.clone());
            let plan = lifecycle_plan(deps, action, progress, &mut subject).await;
            (plan, Some(action))
        }
        Intent::SpotInterruption(warning) => {
            subject.instance = Some(warning.instance_id.clone());
            (spot_plan(deps, warning, &mut subject).await, None)
        }
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            deps.reporter.failure(&subject, "observe", &e).await;
            return Err(e);
        }
    };
    let target = Target {
        event: &event,
        lifecycle,
        subject,
    };
    act::execute(deps, &target, plan).await
}

/// Reads what the decision needs for a lifecycle action and decides.
async fn lifecycle_plan(
    deps: &Deps,
    action: &LifecycleAction,
    progress: &Progress,
    subject: &mut Subject,
) -> Result<Vec<Step>> {
    let now = Utc::now();
    // Every look, re-checks too, reads the group: its tag is what opts it in, and what
    // a carried progress is checked against.
    let group = deps.asg.group(&action.group).await?;
    let Some(cluster) = group.as_ref().and_then(|g| g.cluster()).map(str::to_string) else {
        return Ok(decide::skip(
            "lifecycle",
            format!("Ignored lifecycle action for unmanaged group {}", action.group),
            format!(
                "Auto Scaling group `{}` has no `ecs-autopilot:cluster` tag (or no longer exists), so instance-drain leaves its lifecycle action `{}` for `{}` alone.",
                action.group, action.hook, action.instance_id
            ),
        ));
    };
    let progress = decide::trusted(progress, &cluster);
    subject.cluster = Some(cluster.clone());
    match action.transition {
        Transition::Launching => {
            let ci = deps
                .ecs
                .find_container_instance(&cluster, &action.instance_id)
                .await?;
            Ok(decide::launch(
                action,
                &progress,
                &cluster,
                ci.as_ref(),
                &deps.config,
                now,
            ))
        }
        Transition::Terminating => {
            let rechecking = progress.cluster.is_some();
            if !rechecking && !deps.ecs.is_managed(&cluster).await? {
                return Ok(decide::not_opted_in(action, &cluster));
            }
            let host = observe_host(deps, &cluster, &action.instance_id, &progress).await?;
            let plan = decide::terminate(action, &progress, &host, &deps.config, now);
            // A re-check skipped the opt-in reads; they are made before it writes to ECS.
            if rechecking && decide::writes_to_ecs(&plan) {
                if !deps.ecs.is_managed(&cluster).await? {
                    return Ok(decide::not_opted_in(action, &cluster));
                }
                let carried = progress.container_instance_arn.clone().unwrap_or_default();
                let ours = deps
                    .ecs
                    .describe_container_instances(&cluster, vec![carried.clone()])
                    .await?
                    .iter()
                    .any(|ci| ci.ec2_instance_id == action.instance_id);
                if !ours {
                    return Ok(decide::skip(
                        "lifecycle",
                        format!("Ignored a re-check of {}: carried progress does not match", action.instance_id),
                        format!(
                            "The re-check names container instance `{carried}`, which is not `{}`'s in cluster `{cluster}`; nothing was changed.",
                            action.instance_id
                        ),
                    ));
                }
            }
            Ok(plan)
        }
    }
}

/// Reads the container instance and the tasks still on it.
async fn observe_host(
    deps: &Deps,
    cluster: &str,
    instance_id: &str,
    progress: &Progress,
) -> Result<HostState> {
    let container_instance = match &progress.container_instance_arn {
        // On a re-check the instance is known; its tasks are all we need to read.
        Some(arn) => Some(shared::aws::ecs::ContainerInstance {
            arn: arn.clone(),
            ec2_instance_id: instance_id.to_string(),
            status: "DRAINING".into(),
            agent_connected: true,
            running_tasks_count: 0,
            ami_id: None,
        }),
        None => {
            deps.ecs
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
            .ecs
            .describe_tasks(cluster, arns)
            .await?
            .into_iter()
            .filter(|t| t.is_running() && t.container_instance_arn.as_deref() == Some(&ci.arn))
            .collect(),
        _ => deps.ecs.tasks_on(cluster, &ci.arn).await?,
    };
    let mut daemon_services: std::collections::BTreeSet<String> =
        progress.daemon_services.iter().cloned().collect();
    let unknown: Vec<String> = tasks
        .iter()
        .filter_map(|t| t.service())
        .filter(|s| {
            !daemon_services.contains(*s) && !progress.replica_services.iter().any(|r| r == s)
        })
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unknown.is_empty() {
        daemon_services.extend(deps.ecs.daemon_services(cluster, &unknown).await?);
    }
    Ok(HostState {
        cluster: cluster.to_string(),
        container_instance: Some(ci),
        tasks,
        daemon_services,
    })
}

/// Finds the cluster of a spot instance (its group's tag, or a managed cluster it is
/// registered in) and decides.
async fn spot_plan(
    deps: &Deps,
    warning: &InstanceWarning,
    subject: &mut Subject,
) -> Result<Vec<Step>> {
    let mut clusters = vec![];
    if let Some(group_name) = deps.asg.group_of_instance(&warning.instance_id).await? {
        subject.group = Some(group_name.clone());
        if let Some(c) = deps
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
        clusters = deps.ecs.managed_clusters().await?;
    }
    for cluster in clusters {
        if !listed && !deps.ecs.is_managed(&cluster).await? {
            continue;
        }
        if let Some(ci) = deps
            .ecs
            .find_container_instance(&cluster, &warning.instance_id)
            .await?
        {
            subject.cluster = Some(cluster.clone());
            let tasks = deps.ecs.tasks_on(&cluster, &ci.arn).await?.len();
            return Ok(decide::spot(warning, &cluster, Some(&ci), tasks));
        }
    }
    Ok(decide::skip(
        "drain",
        format!("Spot interruption of {}: not in a managed cluster", warning.instance_id),
        format!(
            "`{}` is not a container instance of any cluster tagged `ecs-autopilot:managed=true`; nothing to drain.",
            warning.instance_id
        ),
    ))
}
