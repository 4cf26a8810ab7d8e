//! ECS: clusters, container instances and tasks.

use std::collections::BTreeSet;

use aws_sdk_ecs::types::{
    ClusterField, ContainerInstanceStatus, DesiredStatus, SchedulingStrategy,
};
use aws_sdk_ecs::Client;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::batches;
use crate::error::{aws, Error, Result};

pub const MANAGED_TAG: &str = "ecs-autopilot:managed";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInstance {
    pub arn: String,
    pub ec2_instance_id: String,
    /// ACTIVE, DRAINING, REGISTERING, ...
    pub status: String,
    pub agent_connected: bool,
    pub running_tasks_count: i32,
    /// The `ecs.ami-id` attribute the agent reports.
    pub ami_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
    pub desired_status: String,
    /// `service:NAME` for service tasks, `family:NAME` for standalone ones.
    pub group: String,
    pub started_by: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub task_definition_arn: String,
    pub launch_type: Option<String>,
    pub container_instance_arn: Option<String>,
}

impl Task {
    /// The service this task belongs to, if it was started by one.
    pub fn service(&self) -> Option<&str> {
        self.group.strip_prefix("service:")
    }

    /// A task still runs until ECS reports it STOPPED, whatever its desired status.
    pub fn is_running(&self) -> bool {
        self.last_status != "STOPPED" && self.last_status != "DELETED"
    }
}

#[derive(Clone, Debug)]
pub struct Ecs {
    client: Client,
}

impl Ecs {
    pub fn new(client: Client) -> Self {
        Ecs { client }
    }

    /// Whether the cluster exists, is ACTIVE and carries `ecs-autopilot:managed=true`.
    pub async fn is_managed(&self, cluster: &str) -> Result<bool> {
        let out = self
            .client
            .describe_clusters()
            .clusters(cluster)
            .include(ClusterField::Tags)
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeClusters", e))?;
        Ok(out.clusters().iter().any(|c| {
            c.status() == Some("ACTIVE")
                && c.tags()
                    .iter()
                    .any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some("true"))
        }))
    }

    /// Names of all clusters tagged `ecs-autopilot:managed=true`.
    pub async fn managed_clusters(&self) -> Result<Vec<String>> {
        let arns: Vec<String> = self
            .client
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| aws("ecs", "ListClusters", e))?;
        let mut managed = vec![];
        for batch in batches(&arns, 100) {
            let out = self
                .client
                .describe_clusters()
                .set_clusters(Some(batch))
                .include(ClusterField::Tags)
                .send()
                .await
                .map_err(|e| aws("ecs", "DescribeClusters", e))?;
            managed.extend(out.clusters().iter().filter_map(|c| {
                let tagged = c
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some("true"));
                (tagged && c.status() == Some("ACTIVE"))
                    .then(|| c.cluster_name().unwrap_or_default().to_string())
            }));
        }
        Ok(managed)
    }

    /// The container instance running on EC2 instance `ec2_instance_id`, if any. The
    /// list filter narrows the search, but the described record decides: a filter that
    /// is ignored or too broad must not make us drain the wrong host.
    pub async fn find_container_instance(
        &self,
        cluster: &str,
        ec2_instance_id: &str,
    ) -> Result<Option<ContainerInstance>> {
        let arns: Vec<String> = self
            .client
            .list_container_instances()
            .cluster(cluster)
            .filter(format!("ec2InstanceId == {ec2_instance_id}"))
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| aws("ecs", "ListContainerInstances", e))?;
        for batch in batches(&arns, 100) {
            let found = self
                .describe_container_instances(cluster, batch)
                .await?
                .into_iter()
                .find(|ci| ci.ec2_instance_id == ec2_instance_id);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Describes up to 100 container instances; unknown ARNs are left out.
    pub async fn describe_container_instances(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<ContainerInstance>> {
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let out = self
            .client
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(arns))
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeContainerInstances", e))?;
        Ok(out
            .container_instances()
            .iter()
            .map(|ci| ContainerInstance {
                arn: ci.container_instance_arn().unwrap_or_default().to_string(),
                ec2_instance_id: ci.ec2_instance_id().unwrap_or_default().to_string(),
                status: ci.status().unwrap_or_default().to_string(),
                agent_connected: ci.agent_connected(),
                running_tasks_count: ci.running_tasks_count(),
                ami_id: ci
                    .attributes()
                    .iter()
                    .find(|a| a.name() == "ecs.ami-id")
                    .and_then(|a| a.value())
                    .map(str::to_string),
            })
            .collect())
    }

    /// Sets the container instance DRAINING; already DRAINING is success.
    pub async fn set_draining(&self, cluster: &str, container_instance_arn: &str) -> Result<()> {
        let out = self
            .client
            .update_container_instances_state()
            .cluster(cluster)
            .container_instances(container_instance_arn)
            .status(ContainerInstanceStatus::Draining)
            .send()
            .await
            .map_err(|e| aws("ecs", "UpdateContainerInstancesState", e))?;
        if let Some(f) = out.failures().first() {
            return Err(Error::Aws {
                service: "ecs",
                operation: "UpdateContainerInstancesState",
                code: f.reason().unwrap_or("Failure").to_string(),
                message: format!(
                    "{}: {}",
                    f.arn().unwrap_or_default(),
                    f.detail().unwrap_or_default()
                ),
                retryable: false,
            });
        }
        Ok(())
    }

    /// Every task placed on the container instance that has not yet stopped. Tasks ECS
    /// is stopping have desired status STOPPED but still run, so both lists are read and
    /// each task is judged by its described `lastStatus`.
    pub async fn tasks_on(&self, cluster: &str, container_instance_arn: &str) -> Result<Vec<Task>> {
        let mut arns = BTreeSet::new();
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let page: Vec<String> = self
                .client
                .list_tasks()
                .cluster(cluster)
                .container_instance(container_instance_arn)
                .desired_status(desired)
                .into_paginator()
                .items()
                .send()
                .collect::<std::result::Result<_, _>>()
                .await
                .map_err(|e| aws("ecs", "ListTasks", e))?;
            arns.extend(page);
        }
        let arns: Vec<String> = arns.into_iter().collect();
        let tasks = self.describe_tasks(cluster, &arns).await?;
        Ok(tasks
            .into_iter()
            .filter(|t| {
                t.is_running()
                    && t.container_instance_arn.as_deref() == Some(container_instance_arn)
            })
            .collect())
    }

    /// Describes tasks in batches of 100; unknown ARNs are left out.
    pub async fn describe_tasks(&self, cluster: &str, arns: &[String]) -> Result<Vec<Task>> {
        let mut tasks = vec![];
        for batch in batches(arns, 100) {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch))
                .send()
                .await
                .map_err(|e| aws("ecs", "DescribeTasks", e))?;
            tasks.extend(out.tasks().iter().map(|t| {
                Task {
                    arn: t.task_arn().unwrap_or_default().to_string(),
                    last_status: t.last_status().unwrap_or_default().to_string(),
                    desired_status: t.desired_status().unwrap_or_default().to_string(),
                    group: t.group().unwrap_or_default().to_string(),
                    started_by: t.started_by().map(str::to_string),
                    started_at: t
                        .started_at()
                        .and_then(|d| DateTime::from_timestamp(d.secs(), d.subsec_nanos())),
                    task_definition_arn: t.task_definition_arn().unwrap_or_default().to_string(),
                    launch_type: t.launch_type().map(|l| l.as_str().to_string()),
                    container_instance_arn: t.container_instance_arn().map(str::to_string),
                }
            }));
        }
        Ok(tasks)
    }

    /// Which of `services` use the DAEMON scheduling strategy.
    pub async fn daemon_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<BTreeSet<String>> {
        let mut daemons = BTreeSet::new();
        for batch in batches(services, 10) {
            let out = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch))
                .send()
                .await
                .map_err(|e| aws("ecs", "DescribeServices", e))?;
            daemons.extend(out.services().iter().filter_map(|s| {
                (s.scheduling_strategy() == Some(&SchedulingStrategy::Daemon))
                    .then(|| s.service_name().unwrap_or_default().to_string())
            }));
        }
        Ok(daemons)
    }

    /// Stops a task; ECS's stop reason is limited to 255 characters.
    pub async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()> {
        let reason: String = reason.chars().take(255).collect();
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| aws("ecs", "StopTask", e))?;
        Ok(())
    }
}
