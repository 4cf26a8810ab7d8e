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

    pub fn client(&self) -> &Client {
        &self.client
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
        self.set_state(
            cluster,
            container_instance_arn,
            ContainerInstanceStatus::Draining,
        )
        .await
    }

    /// Sets the container instance ACTIVE again (a host back from a warm pool or a
    /// stop); already ACTIVE is success.
    pub async fn set_active(&self, cluster: &str, container_instance_arn: &str) -> Result<()> {
        self.set_state(
            cluster,
            container_instance_arn,
            ContainerInstanceStatus::Active,
        )
        .await
    }

    async fn set_state(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        status: ContainerInstanceStatus,
    ) -> Result<()> {
        let out = self
            .client
            .update_container_instances_state()
            .cluster(cluster)
            .container_instances(container_instance_arn)
            .status(status)
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
        let tasks = self.describe_raw_tasks(cluster, arns, None).await?;
        Ok(tasks.iter().map(task_of).collect())
    }

    /// DescribeTasks in batches of 100, optionally with extra fields (tags).
    async fn describe_raw_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        include: Option<aws_sdk_ecs::types::TaskField>,
    ) -> Result<Vec<aws_sdk_ecs::types::Task>> {
        let mut tasks = vec![];
        for batch in batches(arns, 100) {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch))
                .set_include(include.clone().map(|f| vec![f]))
                .send()
                .await
                .map_err(|e| aws("ecs", "DescribeTasks", e))?;
            tasks.extend(out.tasks().iter().cloned());
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
        daemons.extend(
            self.described_services(cluster, services)
                .await?
                .iter()
                .filter(|s| s.scheduling_strategy() == Some(&SchedulingStrategy::Daemon))
                .map(|s| s.service_name().unwrap_or_default().to_string()),
        );
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

/// A service as task retirement needs it: whether it still runs, and its tags (where the
/// "already handled" marker lives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDescription {
    pub arn: String,
    pub name: String,
    pub cluster_arn: String,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub tags: std::collections::BTreeMap<String, String>,
    /// `ECS`, `CODE_DEPLOY` or `EXTERNAL` (`ECS` when AWS does not say).
    pub deployment_controller: String,
    /// The service's task definition ARN.
    pub task_definition: String,
    /// A deployment of the service is still rolling out (see [`deploying`]).
    pub deploying: bool,
    /// `deploymentConfiguration.minimumHealthyPercent`, when AWS gives it.
    pub minimum_healthy_percent: Option<i32>,
}

impl ServiceDescription {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

/// A service has a deployment still rolling out: `rolloutState` IN_PROGRESS, or, where
/// AWS gives no rollout state (older deployments), more than one deployment.
fn deploying(s: &aws_sdk_ecs::types::Service) -> bool {
    let deployments = s.deployments();
    deployments.iter().any(|d| {
        d.rollout_state()
            .is_some_and(|r| *r == aws_sdk_ecs::types::DeploymentRolloutState::InProgress)
    }) || (deployments.len() > 1 && deployments.iter().all(|d| d.rollout_state().is_none()))
}

fn service_description(s: &aws_sdk_ecs::types::Service) -> ServiceDescription {
    ServiceDescription {
        arn: s.service_arn().unwrap_or_default().to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        deployment_controller: s
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_string())
            .unwrap_or_else(|| "ECS".into()),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        deploying: deploying(s),
        minimum_healthy_percent: s
            .deployment_configuration()
            .and_then(|c| c.minimum_healthy_percent()),
    }
}

/// One container of a task definition and the image it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerImage {
    pub container: String,
    pub image: String,
}

impl ContainerImage {
    /// Named by digest (`repo@sha256:…`): a new deployment runs the same image. A tag
    /// (`:latest`, `:prod`, or none) is resolved again by each new deployment.
    pub fn is_pinned(&self) -> bool {
        self.image.contains("@sha256:")
    }
}

/// Task retirement: the cluster's deployments in progress, and a task definition's images.
impl Ecs {
    /// Names of the cluster's services with a deployment still rolling out (ListServices,
    /// then DescribeServices 10 at a time).
    pub async fn services_deploying(&self, cluster: &str) -> Result<Vec<String>> {
        let mut arns: Vec<String> = vec![];
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_services()
                .cluster(cluster)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws("ecs", "ListServices", e))?;
            arns.extend(out.service_arns().iter().cloned());
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(self
            .described_services(cluster, &arns)
            .await?
            .iter()
            .filter(|s| s.status() == Some("ACTIVE") && deploying(s))
            .map(|s| s.service_name().unwrap_or_default().to_string())
            .collect())
    }

    /// DescribeServices, 10 services (its limit) per call.
    async fn described_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<aws_sdk_ecs::types::Service>> {
        let mut found = vec![];
        for batch in batches(services, 10) {
            let out = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch))
                .send()
                .await
                .map_err(|e| aws("ecs", "DescribeServices", e))?;
            found.extend(out.services().iter().cloned());
        }
        Ok(found)
    }

    /// The service's tasks that are to run (desired status RUNNING), described.
    pub async fn service_tasks(&self, cluster: &str, service: &str) -> Result<Vec<Task>> {
        let mut arns: Vec<String> = vec![];
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status(DesiredStatus::Running)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws("ecs", "ListTasks", e))?;
            arns.extend(out.task_arns().iter().cloned());
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        if arns.is_empty() {
            return Ok(vec![]);
        }
        self.describe_tasks(cluster, &arns).await
    }

    /// DescribeTaskDefinition, as the SDK gives it (`None` if the answer has none).
    pub async fn task_definition(
        &self,
        task_definition: &str,
    ) -> Result<Option<aws_sdk_ecs::types::TaskDefinition>> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeTaskDefinition", e))?;
        Ok(out.task_definition)
    }

    /// The images a task definition's containers name.
    pub async fn task_definition_images(
        &self,
        task_definition: &str,
    ) -> Result<Vec<ContainerImage>> {
        Ok(self
            .task_definition(task_definition)
            .await?
            .map(|td| {
                td.container_definitions()
                    .iter()
                    .map(|c| ContainerImage {
                        container: c.name().unwrap_or_default().to_string(),
                        image: c.image().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// What became of a forced deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployOutcome {
    Started,
    /// The service was deleted (or is being deleted) meanwhile: its tasks are going anyway.
    ServiceGone,
}

/// Services: reading one, replacing its tasks, marking it.
impl Ecs {
    /// Describes one service with its tags; `None` when ECS does not know it.
    pub async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceDescription>> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeServices", e))?;
        Ok(out.services().first().map(service_description))
    }

    /// Starts a new deployment of the service's current task definition, so ECS replaces
    /// every task within the service's minimumHealthyPercent / maximumPercent.
    pub async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<DeployOutcome> {
        let sent = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| aws("ecs", "UpdateService", e));
        match sent {
            Ok(_) => Ok(DeployOutcome::Started),
            Err(e)
                if matches!(
                    e.aws_code(),
                    Some("ServiceNotActiveException" | "ServiceNotFoundException")
                ) =>
            {
                Ok(DeployOutcome::ServiceGone)
            }
            Err(e) => Err(e),
        }
    }

    /// Adds (or overwrites) tags on an ECS resource, by ARN.
    pub async fn tag_resource(&self, arn: &str, tags: &[(&str, &str)]) -> Result<()> {
        let tags: Vec<aws_sdk_ecs::types::Tag> = tags
            .iter()
            .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(*k).value(*v).build())
            .collect();
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws("ecs", "TagResource", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;
    use aws_sdk_ecs::error::ErrorMetadata;
    use aws_sdk_ecs::operation::update_service::UpdateServiceError;
    use aws_sdk_ecs::types::error::{ServerException, ServiceNotActiveException};
    use aws_smithy_mocks::{mock, mock_client};

    /// The code AWS puts on the wire; a modeled error built in a test has none otherwise.
    fn meta(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).build()
    }

    #[tokio::test]
    async fn forcing_a_deployment_of_a_deleted_service_is_not_an_error() {
        let gone = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::ServiceNotActiveException(
                ServiceNotActiveException::builder()
                    .message("Service was not ACTIVE.")
                    .meta(meta("ServiceNotActiveException"))
                    .build(),
            )
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&gone]));
        assert_eq!(
            ecs.force_new_deployment("prod", "web").await.unwrap(),
            DeployOutcome::ServiceGone
        );
    }

    #[tokio::test]
    async fn a_server_fault_on_update_service_is_retryable() {
        let fault = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::ServerException(
                ServerException::builder()
                    .message("boom")
                    .meta(meta("ServerException"))
                    .build(),
            )
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&fault]));
        let e = ecs.force_new_deployment("prod", "web").await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.aws_code(), Some("ServerException"));
    }
}

/// What a task was, kept as evidence before it is stopped: StopTask loses its tags and
/// ECS forgets a stopped task after about an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskEvidence {
    pub task: Task,
    pub stopped_reason: Option<String>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub availability_zone: Option<String>,
    pub capacity_provider: Option<String>,
    pub platform_version: Option<String>,
    pub containers: Vec<ContainerEvidence>,
    /// Task attachments (the awsvpc ENI: interface id, private address, subnet, ...).
    pub attachments: Vec<AttachmentEvidence>,
    pub tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerEvidence {
    pub name: String,
    pub image: Option<String>,
    /// The digest the image tag resolved to when the task started: the exact image run.
    pub image_digest: Option<String>,
    pub runtime_id: Option<String>,
    pub last_status: Option<String>,
    pub private_ipv4: Vec<String>,
    /// `hostPort->containerPort/protocol` for bridge and host networking.
    pub port_bindings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentEvidence {
    pub kind: String,
    pub status: Option<String>,
    pub details: std::collections::BTreeMap<String, String>,
}

/// Task evidence and the stop history of a service.
impl Ecs {
    /// Describes tasks with their containers, network and tags; unknown ARNs are left out.
    pub async fn describe_task_evidence(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<TaskEvidence>> {
        let tasks = self
            .describe_raw_tasks(cluster, arns, Some(aws_sdk_ecs::types::TaskField::Tags))
            .await?;
        Ok(tasks.iter().map(task_evidence).collect())
    }

    /// The stopped tasks ECS still remembers (about an hour) for one service.
    pub async fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<TaskEvidence>> {
        let arns: Vec<String> = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Stopped)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| aws("ecs", "ListTasks", e))?;
        self.describe_task_evidence(cluster, &arns).await
    }
}

fn timestamp(d: &aws_sdk_ecs::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(d.secs(), d.subsec_nanos())
}

/// The domain [`Task`] of an SDK task.
pub fn task_of(t: &aws_sdk_ecs::types::Task) -> Task {
    Task {
        arn: t.task_arn().unwrap_or_default().to_string(),
        last_status: t.last_status().unwrap_or_default().to_string(),
        desired_status: t.desired_status().unwrap_or_default().to_string(),
        group: t.group().unwrap_or_default().to_string(),
        started_by: t.started_by().map(str::to_string),
        started_at: t.started_at().and_then(timestamp),
        task_definition_arn: t.task_definition_arn().unwrap_or_default().to_string(),
        launch_type: t.launch_type().map(|l| l.as_str().to_string()),
        container_instance_arn: t.container_instance_arn().map(str::to_string),
    }
}

fn task_evidence(t: &aws_sdk_ecs::types::Task) -> TaskEvidence {
    let containers = t
        .containers()
        .iter()
        .map(|c| ContainerEvidence {
            name: c.name().unwrap_or_default().to_string(),
            image: c.image().map(str::to_string),
            image_digest: c.image_digest().map(str::to_string),
            runtime_id: c.runtime_id().map(str::to_string),
            last_status: c.last_status().map(str::to_string),
            private_ipv4: c
                .network_interfaces()
                .iter()
                .filter_map(|n| n.private_ipv4_address().map(str::to_string))
                .collect(),
            port_bindings: c
                .network_bindings()
                .iter()
                .map(|b| {
                    format!(
                        "{}->{}/{}",
                        b.host_port().unwrap_or_default(),
                        b.container_port().unwrap_or_default(),
                        b.protocol().map(|p| p.as_str()).unwrap_or("tcp")
                    )
                })
                .collect(),
        })
        .collect();
    let attachments = t
        .attachments()
        .iter()
        .map(|a| AttachmentEvidence {
            kind: a.r#type().unwrap_or_default().to_string(),
            status: a.status().map(str::to_string),
            details: a
                .details()
                .iter()
                .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                .collect(),
        })
        .collect();
    TaskEvidence {
        task: task_of(t),
        stopped_reason: t.stopped_reason().map(str::to_string),
        stopped_at: t.stopped_at().and_then(timestamp),
        availability_zone: t.availability_zone().map(str::to_string),
        capacity_provider: t.capacity_provider_name().map(str::to_string),
        platform_version: t.platform_version().map(str::to_string),
        containers,
        attachments,
        tags: t
            .tags()
            .iter()
            .filter_map(|tag| {
                Some((
                    tag.key()?.to_string(),
                    tag.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

#[cfg(test)]
mod evidence_tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_tasks::{DescribeTasksError, DescribeTasksOutput};
    use aws_sdk_ecs::types::{Container, NetworkBinding, Tag, TransportProtocol};
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn evidence_keeps_image_digests_ports_and_tags() {
        let described = mock!(Client::describe_tasks).then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(
                    aws_sdk_ecs::types::Task::builder()
                        .task_arn("arn:task/prod/1")
                        .last_status("RUNNING")
                        .group("service:web")
                        .containers(
                            Container::builder()
                                .name("app")
                                .image("web:1")
                                .image_digest("sha256:abc")
                                .network_bindings(
                                    NetworkBinding::builder()
                                        .host_port(32768)
                                        .container_port(80)
                                        .protocol(TransportProtocol::Tcp)
                                        .build(),
                                )
                                .build(),
                        )
                        .tags(Tag::builder().key("team").value("web").build())
                        .build(),
                )
                .build()
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&described]));
        let found = ecs
            .describe_task_evidence("prod", &["arn:task/prod/1".into()])
            .await
            .unwrap();
        let e = &found[0];
        assert_eq!(e.task.service(), Some("web"));
        assert_eq!(e.containers[0].image_digest.as_deref(), Some("sha256:abc"));
        assert_eq!(e.containers[0].port_bindings, ["32768->80/tcp"]);
        assert_eq!(e.tags.get("team").map(String::as_str), Some("web"));
    }

    #[tokio::test]
    async fn throttled_describe_tasks_is_retryable() {
        let throttled = mock!(Client::describe_tasks).then_error(|| {
            DescribeTasksError::generic(
                aws_sdk_ecs::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&throttled]));
        let e = ecs
            .describe_task_evidence("prod", &["arn:task/prod/1".into()])
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.aws_code(), Some("ThrottlingException"));
    }
}

/// AMI rollout: every container instance of a cluster, with the AMI it runs.
impl Ecs {
    /// Lists the cluster's container instances (100 per page) and describes them in
    /// batches of 100; `ami_id` comes from the agent's `ecs.ami-id` attribute, so no EC2
    /// call is needed to see which image a host runs.
    pub async fn container_instances(&self, cluster: &str) -> Result<Vec<ContainerInstance>> {
        let arns: Vec<String> = self
            .client
            .list_container_instances()
            .cluster(cluster)
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| aws("ecs", "ListContainerInstances", e))?;
        let mut instances = Vec::with_capacity(arns.len());
        for batch in batches(&arns, 100) {
            instances.extend(self.describe_container_instances(cluster, batch).await?);
        }
        Ok(instances)
    }
}
