//! The reads only instance-drain makes, as thin adapters over the SDK clients the
//! shared crate builds; `observe` makes them.

use aws_sdk_ecs::types::{ContainerInstanceStatus, SchedulingStrategy};
use serde::Serialize;
use shared::aws::autoscaling::AutoScaling;
use shared::aws::ec2::Ec2;
use shared::aws::ecs::Ecs;
use shared::error::{aws, Result};

use crate::placement::{Candidate, Constraint};

/// The tag guardduty-responder puts on an EC2 instance it quarantined.
pub const QUARANTINE_TAG: &str = "ecs-autopilot:quarantine";

/// One lifecycle hook of a group, as DescribeLifecycleHooks reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hook {
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_TERMINATING` or `..._LAUNCHING`.
    pub transition: String,
    pub heartbeat_timeout: Option<i64>,
    pub global_timeout: Option<i64>,
}

pub async fn lifecycle_hooks(asg: &AutoScaling, group: &str) -> Result<Vec<Hook>> {
    let out = asg
        .client()
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(group)
        .send()
        .await
        .map_err(|e| aws("autoscaling", "DescribeLifecycleHooks", e))?;
    Ok(out
        .lifecycle_hooks()
        .iter()
        .map(|h| Hook {
            name: h.lifecycle_hook_name().unwrap_or_default().to_string(),
            transition: h.lifecycle_transition().unwrap_or_default().to_string(),
            heartbeat_timeout: h.heartbeat_timeout().map(i64::from),
            global_timeout: h.global_timeout().map(i64::from),
        })
        .collect())
}

/// What EC2 says about a host: whether it still runs and whether it is quarantined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// `running`, `stopping`, `stopped`, ... (empty when EC2 does not know it).
    pub state: String,
    /// A status check (instance or system) reports `impaired`.
    pub impaired: bool,
    pub quarantined: bool,
}

/// DescribeInstances (state and tags), and with `status_checks` DescribeInstanceStatus
/// (impaired). A hold's re-check needs only the tag, and has four calls to spend.
pub async fn host_facts(ec2: &Ec2, instance_id: &str, status_checks: bool) -> Result<HostFacts> {
    let described = ec2
        .client()
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await;
    let described = match described.map_err(|e| aws("ec2", "DescribeInstances", e)) {
        Ok(out) => out,
        // An instance already gone from EC2 is no error for a drain: it has no state.
        Err(e) if e.aws_code() == Some("InvalidInstanceID.NotFound") => {
            return Ok(HostFacts::default())
        }
        Err(e) => return Err(e),
    };
    let Some(instance) = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(instance_id))
    else {
        return Ok(HostFacts::default());
    };
    let state = instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    let quarantined = instance
        .tags()
        .iter()
        .any(|t| t.key() == Some(QUARANTINE_TAG));
    if !status_checks {
        return Ok(HostFacts {
            state,
            impaired: false,
            quarantined,
        });
    }
    let status = ec2
        .client()
        .describe_instance_status()
        .instance_ids(instance_id)
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| aws("ec2", "DescribeInstanceStatus", e))?;
    let impaired = status.instance_statuses().iter().any(|s| {
        let instance = s.instance_status().and_then(|x| x.status());
        let system = s.system_status().and_then(|x| x.status());
        [instance, system]
            .iter()
            .any(|x| x.map(|x| x.as_str()) == Some("impaired"))
    });
    Ok(HostFacts {
        state,
        impaired,
        quarantined,
    })
}

/// What a drain needs to know of a service on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceFacts {
    pub name: String,
    pub daemon: bool,
    /// ECS can neither start a replacement first (maximumPercent 100) nor stop a task
    /// first (minimumHealthyPercent 100): its tasks never leave a draining host.
    pub cannot_move: bool,
    pub desired_count: i32,
    /// The service's current task definition (its replacements' placement constraints).
    pub task_definition: Option<String>,
    /// The service's own placement constraints.
    pub constraints: Vec<Constraint>,
}

pub async fn services(ecs: &Ecs, cluster: &str, names: &[String]) -> Result<Vec<ServiceFacts>> {
    let mut facts = vec![];
    for batch in names.chunks(10) {
        let out = ecs
            .client()
            .describe_services()
            .cluster(cluster)
            .set_services(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeServices", e))?;
        facts.extend(out.services().iter().map(|s| {
            let config = s.deployment_configuration();
            let max = config.and_then(|c| c.maximum_percent()).unwrap_or(200);
            let min = config
                .and_then(|c| c.minimum_healthy_percent())
                .unwrap_or(100);
            let daemon = s.scheduling_strategy() == Some(&SchedulingStrategy::Daemon);
            ServiceFacts {
                name: s.service_name().unwrap_or_default().to_string(),
                daemon,
                cannot_move: !daemon && s.desired_count() > 0 && max <= 100 && min >= 100,
                desired_count: s.desired_count(),
                task_definition: s.task_definition().map(str::to_string),
                constraints: s
                    .placement_constraints()
                    .iter()
                    .filter_map(|c| Constraint::from_api(c.r#type()?.as_str(), c.expression()))
                    .collect(),
            }
        }));
    }
    Ok(facts)
}

/// A task definition's placement constraints (memberOf only: ECS allows no other kind
/// there).
pub async fn task_definition_constraints(
    ecs: &Ecs,
    task_definition: &str,
) -> Result<Vec<Constraint>> {
    Ok(ecs
        .task_definition(task_definition)
        .await?
        .map(|t| t.placement_constraints)
        .unwrap_or_default()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| Constraint::from_api(c.r#type()?.as_str(), c.expression()))
        .collect())
}

/// The cluster's other ACTIVE container instances whose agent is connected: the hosts
/// ECS could start a draining host's tasks on. ListContainerInstances (pages of 100)
/// and one DescribeContainerInstances per 100.
pub async fn other_hosts(ecs: &Ecs, cluster: &str, except_arn: &str) -> Result<Vec<Candidate>> {
    let arns: Vec<String> = ecs
        .client()
        .list_container_instances()
        .cluster(cluster)
        .status(ContainerInstanceStatus::Active)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| aws("ecs", "ListContainerInstances", e))?
        .into_iter()
        .filter(|a| a != except_arn)
        .collect();
    let mut hosts = vec![];
    for batch in arns.chunks(100) {
        let out = ecs
            .client()
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeContainerInstances", e))?;
        hosts.extend(
            out.container_instances()
                .iter()
                .filter(|ci| {
                    ci.agent_connected()
                        && ci.status() == Some(ContainerInstanceStatus::Active.as_str())
                })
                .map(|ci| Candidate {
                    ec2_instance_id: ci.ec2_instance_id().unwrap_or_default().to_string(),
                    attributes: ci
                        .attributes()
                        .iter()
                        .filter_map(|a| Some((a.name().to_string(), a.value()?.to_string())))
                        .collect(),
                }),
        );
    }
    Ok(hosts)
}
