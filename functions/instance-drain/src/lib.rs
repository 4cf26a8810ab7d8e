//! instance-drain: drains ECS container instances before Auto Scaling (or a spot
//! interruption) takes them away, and admits launching instances only once they have
//! joined their cluster.
//!
//! parse (event → intent) → observe (read the cluster) → decide (pure plan) → act.

pub mod act;
pub mod aws;
pub mod config;
pub mod decide;
pub mod parse;
pub mod placement;

use chrono::Utc;
use shared::aws::autoscaling::{AutoScaling, Group, HookOutcome};
use shared::aws::ec2::Ec2;
use shared::aws::ecs::Ecs;
use shared::aws::sqs::Queue;
use shared::events::autoscaling::{LifecycleAction, Transition};
use shared::events::ec2::InstanceWarning;
use shared::events::Envelope;
use shared::notify::{Reporter, Subject};
use shared::Result;

use act::Target;
use config::{Config, FUNCTION};
use decide::{HostState, Plan};
use parse::{Intent, Place, Progress};

/// Looks in a row that may fail after their heartbeat and be re-queued quickly; the
/// next failure goes through the queue's redrive (and, in the end, its DLQ).
pub const MAX_FAILED_LOOKS: u32 = 3;
/// Delay before a look that failed after its heartbeat is tried again.
pub const RETRY_DELAY_SECONDS: u32 = 10;

/// Everything the handler needs from the world, built once per cold start.
pub struct Deps {
    pub config: Config,
    pub ecs: Ecs,
    pub asg: AutoScaling,
    pub ec2: Ec2,
    pub queue: Queue,
    pub reporter: Reporter,
}

impl Deps {
    /// The adapters of one account and Region (see `shared::tenancy`), with the
    /// function's settings.
    pub fn new(aws: &shared::aws::Aws, config: &Config) -> Self {
        Deps {
            ecs: aws.ecs(),
            asg: aws.autoscaling(),
            ec2: aws.ec2(),
            queue: aws.queue(&config.queue_url),
            reporter: aws.reporter(&config.common),
            config: config.clone(),
        }
    }
}

shared::function!(Deps, config::Config, Deps::new, handle);

/// What the look's first write, the heartbeat, found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beat {
    Alive,
    Gone,
    /// Not sent (dry run), or it failed (logged): the look goes on regardless.
    Unknown,
}

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event)?;
    let mut subject = Subject {
        event_id: event.id.clone(),
        kind: intent.kind().to_string(),
        ..Subject::default()
    };
    match &intent {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            Ok(())
        }
        Intent::Lifecycle {
            action,
            progress,
            origin,
            destination,
        } => {
            if !deps.config.hooks.owns(&action.hook) {
                // Another tool's hook (ECS managed draining, a log shipper, ...): not
                // ours to drain, heartbeat, complete or report.
                tracing::debug!(event_id = %event.id, hook = %action.hook, group = %action.group, "not one of our hooks (LIFECYCLE_HOOK_NAMES)");
                shared::metrics::emit(FUNCTION, "lifecycle", "foreign-hook");
                return Ok(());
            }
            subject.group = Some(action.group.clone());
            subject.instance = Some(action.instance_id.clone());
            // Every look reads the group first and heartbeats only a group that carries
            // the opt-in tag: a carried progress can be forged by anyone who can send to
            // the queue. A failed read still heartbeats (IAM refuses untagged groups, and
            // a live action matters more than one read); the look then fails and is
            // re-queued.
            let group = deps.asg.group(&action.group).await;
            let opted_in = match &group {
                Ok(g) => g.as_ref().and_then(|g| g.cluster()).is_some(),
                Err(_) => true,
            };
            let beat = if opted_in {
                heartbeat(deps, action).await
            } else {
                Beat::Unknown
            };
            let look = async {
                let plan = lifecycle_plan(
                    deps,
                    action,
                    group,
                    progress,
                    (*origin, *destination),
                    beat,
                    &mut subject,
                )
                .await?;
                let target = Target {
                    event: &event,
                    lifecycle: Some(action),
                    subject: subject.clone(),
                };
                act::execute(deps, &target, plan).await
            };
            match look.await {
                Ok(()) => Ok(()),
                Err(e) if beat == Beat::Alive && progress.failed_looks < MAX_FAILED_LOOKS => {
                    retry_soon(deps, &event, progress, &subject, e).await
                }
                Err(e) => {
                    deps.reporter.failure(&subject, "lifecycle", &e).await;
                    Err(e)
                }
            }
        }
        Intent::SpotInterruption(warning) => {
            subject.instance = Some(warning.instance_id.clone());
            let plan = match spot_plan(deps, warning, &mut subject).await {
                Ok(plan) => plan,
                Err(e) => {
                    deps.reporter.failure(&subject, "observe", &e).await;
                    return Err(e);
                }
            };
            let target = Target {
                event: &event,
                lifecycle: None,
                subject,
            };
            let done = act::execute(deps, &target, plan).await;
            if let Err(e) = &done {
                deps.reporter.failure(&target.subject, "drain", e).await;
            }
            done
        }
    }
}

/// The first write of every look: it needs only the event, so no failed read can keep
/// the action from being kept alive. A failure is logged and the look goes on.
async fn heartbeat(deps: &Deps, action: &LifecycleAction) -> Beat {
    if deps.reporter.dry_run() {
        return Beat::Unknown;
    }
    match deps.asg.record_heartbeat(action).await {
        Ok(HookOutcome::Done) => Beat::Alive,
        Ok(HookOutcome::NoActiveAction) => Beat::Gone,
        Err(e) => {
            tracing::error!(instance = %action.instance_id, hook = %action.hook, error = %e, retryable = e.is_retryable(), "heartbeat failed; the look goes on");
            shared::metrics::emit(FUNCTION, "heartbeat", "failed");
            Beat::Unknown
        }
    }
}

/// A look failed after its heartbeat: send the event back with a short delay rather
/// than wait out the queue's visibility timeout, which may be longer than the hook's.
async fn retry_soon(
    deps: &Deps,
    event: &Envelope,
    progress: &Progress,
    subject: &Subject,
    error: shared::Error,
) -> Result<()> {
    let again = Progress {
        failed_looks: progress.failed_looks + 1,
        ..progress.clone()
    };
    match act::send_back(deps, event, &again, RETRY_DELAY_SECONDS).await {
        Ok(()) => {
            tracing::error!(event_id = %event.id, error = %error, retryable = error.is_retryable(), failed_looks = again.failed_looks, "look failed after its heartbeat; re-queued");
            shared::metrics::emit(FUNCTION, "lifecycle", "requeued");
            Ok(())
        }
        Err(e) => {
            tracing::error!(event_id = %event.id, error = %e, "could not re-queue the failed look");
            deps.reporter.failure(subject, "lifecycle", &error).await;
            Err(error)
        }
    }
}

/// Reads what the decision needs for a lifecycle action and decides.
async fn lifecycle_plan(
    deps: &Deps,
    action: &LifecycleAction,
    group: Result<Option<Group>>,
    progress: &Progress,
    (origin, destination): (Place, Place),
    beat: Beat,
    subject: &mut Subject,
) -> Result<Plan> {
    let now = Utc::now();
    // Every look, re-checks too, read the group (before the heartbeat): its tag is what
    // opts it in, and what a carried progress is checked against.
    let group = group?;
    let Some(cluster) = group.as_ref().and_then(|g| g.cluster()).map(str::to_string) else {
        return Ok(decide::untagged_group(action));
    };
    let mut progress = decide::trusted(progress, &cluster);
    subject.cluster = Some(cluster.clone());
    let terminating = action.transition == Transition::Terminating;
    if beat == Beat::Gone {
        let host = match terminating && !progress.quarantined {
            true => Some(observe_host(deps, &cluster, &action.instance_id, &progress).await?),
            false => None,
        };
        return Ok(match progress.quarantined {
            true => decide::hold_ended(
                action,
                "the lifecycle action was completed (or its global timeout passed)",
            ),
            false => decide::action_gone(action, host.as_ref()),
        });
    }
    if progress.quarantined {
        // The hold's re-check: heartbeat (done), the group (read), the host's tag.
        let in_group = group
            .iter()
            .flat_map(|g| &g.instances)
            .any(|i| i.instance_id == action.instance_id);
        if !in_group {
            return Ok(decide::hold_ended(
                action,
                "the host was detached from the group",
            ));
        }
        if aws::host_facts(&deps.ec2, &action.instance_id, false)
            .await?
            .quarantined
        {
            return Ok(decide::hold_quarantined(
                action,
                &progress,
                &cluster,
                &deps.config,
            ));
        }
        // The tag was removed: drain it like any other host, from a first look.
        progress = Progress {
            started_at: progress.started_at,
            heartbeat_timeout: progress.heartbeat_timeout,
            global_timeout: progress.global_timeout,
            ..Progress::default()
        };
    }
    let first_look = progress.cluster.is_none() && progress.heartbeat_timeout.is_none();
    if first_look {
        // One DescribeLifecycleHooks: our hook's timeouts, and whether ECS drains too.
        let hooks = aws::lifecycle_hooks(&deps.asg, &action.group).await?;
        if let Some(own) = hooks.iter().find(|h| h.name == action.hook) {
            progress.heartbeat_timeout = own.heartbeat_timeout;
            progress.global_timeout = own.global_timeout;
        }
        if terminating
            && hooks
                .iter()
                .any(|h| h.name == decide::ECS_MANAGED_DRAINING_HOOK)
        {
            let facts = aws::host_facts(&deps.ec2, &action.instance_id, false).await?;
            if facts.quarantined {
                return Ok(decide::hold_quarantined(
                    action,
                    &progress,
                    &cluster,
                    &deps.config,
                ));
            }
            return Ok(decide::ecs_drains(action));
        }
    }
    match (action.transition, origin, destination) {
        (Transition::Launching, _, Place::WarmPool) => Ok(decide::into_warm_pool(action)),
        (Transition::Terminating, Place::WarmPool, _) => Ok(decide::out_of_warm_pool(action)),
        (Transition::Launching, _, _) => {
            let ci = deps
                .ecs
                .find_container_instance(&cluster, &action.instance_id)
                .await?;
            let plan = decide::launch(action, &progress, &cluster, ci.as_ref(), &deps.config, now);
            if decide::writes_to_ecs(&plan) && !deps.ecs.is_managed(&cluster).await? {
                return Ok(decide::not_opted_in(action, &cluster));
            }
            Ok(plan)
        }
        (Transition::Terminating, _, _) => {
            let rechecking = progress.cluster.is_some();
            let mut facts = aws::HostFacts::default();
            if !rechecking {
                facts = aws::host_facts(&deps.ec2, &action.instance_id, true).await?;
                if facts.quarantined {
                    return Ok(decide::hold_quarantined(
                        action,
                        &progress,
                        &cluster,
                        &deps.config,
                    ));
                }
                if !deps.ecs.is_managed(&cluster).await? {
                    return Ok(decide::not_opted_in(action, &cluster));
                }
            }
            let mut host = observe_host(deps, &cluster, &action.instance_id, &progress).await?;
            host.facts = facts;
            let plan = decide::terminate(action, &progress, &host, &deps.config, now);
            shared::metrics::emit_drain(FUNCTION, progress.started_at, now);
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
        // On a re-check the instance is known; its tasks are all we need to read (a
        // re-check has four calls: heartbeat, the group, DescribeTasks, the re-queue).
        Some(arn) => Some(shared::aws::ecs::ContainerInstance {
            arn: arn.clone(),
            ec2_instance_id: instance_id.to_string(),
            status: shared::aws::ecs::ContainerInstanceStatus::Draining,
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
    let mut cannot_move = std::collections::BTreeMap::new();
    let mut constrained = vec![];
    if !unknown.is_empty() {
        for s in aws::services(&deps.ecs, cluster, &unknown).await? {
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
                    .extend(aws::task_definition_constraints(&deps.ecs, td).await?);
            }
            if s.constraints.is_empty() {
                continue;
            }
            if others.is_none() {
                others = Some(aws::other_hosts(&deps.ecs, cluster, &ci.arn).await?);
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
        facts: aws::HostFacts::default(),
    })
}

/// Finds the cluster of a spot instance (its group's tag, or a managed cluster it is
/// registered in) and decides.
async fn spot_plan(deps: &Deps, warning: &InstanceWarning, subject: &mut Subject) -> Result<Plan> {
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
    Ok(decide::quiet(
        "drain",
        format!(
            "spot interruption of {}: not a container instance of any cluster tagged ecs-autopilot:managed=true",
            warning.instance_id
        ),
    ))
}
