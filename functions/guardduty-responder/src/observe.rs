//! Every read guardduty-responder makes about a finding's task and host (ECS, Auto
//! Scaling, EC2), returning what it saw ([`Observed`], [`Host`]). No decision here: the
//! configuration only says which reads are needed at all.

use shared::aws::ec2::HostNetwork;
use shared::aws::ecs::ContainerInstance;
use shared::notify::Subject;
use shared::Result;

use crate::decide::{self, Host, HostGroup, Observed};
use crate::parse::{HostThreat, Threat};
use crate::Deps;

/// The host's cluster and container instance, when it is a container instance of a
/// managed cluster (`None` otherwise). The cluster named in the finding is checked
/// first; a finding naming none is matched against every managed cluster.
pub async fn locate_host(
    deps: &Deps,
    host: &HostThreat,
) -> Result<(Threat, bool, Option<ContainerInstance>)> {
    let threat = |cluster: String, cluster_ref: String| Threat {
        finding: host.finding.clone(),
        cluster,
        cluster_ref,
    };
    if let Some((name, arn)) = &host.cluster {
        let managed = deps.aws.ecs.is_managed(arn).await?;
        let ci = match managed {
            true => {
                deps.aws
                    .ecs
                    .find_container_instance(arn, &host.instance_id)
                    .await?
            }
            false => None,
        };
        return Ok((threat(name.clone(), arn.clone()), managed, ci));
    }
    for cluster in deps.aws.ecs.managed_clusters().await? {
        if let Some(ci) = deps
            .aws
            .ecs
            .find_container_instance(&cluster, &host.instance_id)
            .await?
        {
            return Ok((threat(cluster.clone(), cluster), true, Some(ci)));
        }
    }
    let none = "(none: not a container instance of a managed cluster)".to_string();
    Ok((threat(none.clone(), none), false, None))
}

/// Reads the task, and what the rails need: its service's health and stop history, and
/// its host's container instance and Auto Scaling group.
pub async fn task(deps: &Deps, threat: &Threat, subject: &mut Subject) -> Result<Observed> {
    let cluster = &threat.cluster_ref;
    let arns: Vec<String> = threat
        .finding
        .task()
        .and_then(|t| t.arn.clone())
        .into_iter()
        .collect();
    let task = deps
        .aws
        .ecs
        .describe_task_evidence(cluster, &arns)
        .await?
        .into_iter()
        .next();
    let mut seen = Observed {
        task,
        ..Observed::default()
    };
    let Some(task) = seen.task.as_ref().map(|e| e.task.clone()) else {
        return Ok(seen);
    };
    if let (true, Some(service)) = (
        task.is_running() && task.desired_status != shared::aws::ecs::TaskStatus::Stopped,
        task.service(),
    ) {
        seen.service_running = deps
            .aws
            .ecs
            .describe_service(cluster, service)
            .await?
            .map(|s| s.running_count);
        seen.service_stopped = deps
            .aws
            .ecs
            .stopped_tasks_of_service(cluster, service)
            .await?;
    }
    let c = &deps.config;
    let needs_host =
        c.quarantine_host || c.snapshot_volumes || c.quarantine_security_group.is_some();
    let Some(ci_arn) = task.container_instance_arn.filter(|_| needs_host) else {
        return Ok(seen);
    };
    let Some(ci) = deps
        .aws
        .ecs
        .describe_container_instances(cluster, vec![ci_arn])
        .await?
        .into_iter()
        .next()
    else {
        return Ok(seen);
    };
    if let Some(named) = threat
        .finding
        .instance_id()
        .filter(|i| *i != ci.ec2_instance_id)
    {
        // ECS placed the task; its answer decides which host is quarantined.
        tracing::warn!(finding_instance = named, ecs_instance = %ci.ec2_instance_id, "finding names another host than ECS");
    }
    seen.host = Some(host(deps, threat, ci, subject).await?);
    Ok(seen)
}

/// A host as the rails need it: its group (for the quarantine), its network interfaces
/// with their groups (for isolation), its quarantine tag and the snapshots already taken
/// for this finding (what an earlier delivery did). Each read only when the
/// configuration uses it.
pub async fn host(
    deps: &Deps,
    threat: &Threat,
    ci: ContainerInstance,
    subject: &mut Subject,
) -> Result<Host> {
    let c = &deps.config;
    let instance_id = ci.ec2_instance_id.clone();
    subject.about.instance = Some(instance_id.clone());
    let network = match c.quarantine_security_group.is_some() || c.quarantine_host {
        true => deps.aws.ec2.host_network(&instance_id).await?,
        false => HostNetwork::default(),
    };
    let snapshots = match c.snapshot_volumes {
        true => {
            deps.aws
                .ec2
                .snapshots_tagged(decide::FINDING_TAG, &threat.finding.id)
                .await?
        }
        false => vec![],
    };
    let mut host = Host {
        quarantined_for: network.tags.get(decide::QUARANTINE_TAG).cloned(),
        network_interfaces: network.interfaces,
        instance_id,
        container_instance: ci,
        group: None,
        snapshots,
    };
    if !c.quarantine_host {
        return Ok(host);
    }
    if let Some(name) = deps.aws.asg.group_of_instance(&host.instance_id).await? {
        let g = deps.aws.asg.group(&name).await?;
        subject.about.group = Some(name.clone());
        host.group = Some(HostGroup {
            cluster_tag: g.as_ref().and_then(|g| g.cluster()).map(str::to_string),
            lifecycle_state: g.as_ref().and_then(|g| {
                g.instances
                    .iter()
                    .find(|i| i.instance_id == host.instance_id)
                    .map(|i| i.lifecycle_state.clone())
            }),
            name,
        });
    }
    Ok(host)
}
