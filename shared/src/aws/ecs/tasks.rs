//! Tasks: the ones on a host or of a service, described (with their status) or kept in
//! full as evidence before they are stopped, and stopping one.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::operation::list_tasks::builders::ListTasksFluentBuilder;
use aws_sdk_ecs::types::{DesiredStatus, TaskField};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Ecs;
use crate::aws::{batches, tag_map};
use crate::error::{aws, Result};

aws_state! {
    /// A task's `lastStatus` or `desiredStatus` (desired is RUNNING, PENDING or STOPPED).
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
        Deleted = "DELETED",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub arn: String,
    pub last_status: TaskStatus,
    pub desired_status: TaskStatus,
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
        !matches!(self.last_status, TaskStatus::Stopped | TaskStatus::Deleted)
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
    pub tags: BTreeMap<String, String>,
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
    pub details: BTreeMap<String, String>,
}

fn timestamp(d: &aws_sdk_ecs::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(d.secs(), d.subsec_nanos())
}

/// The domain [`Task`] of an SDK task.
pub fn task_of(t: &aws_sdk_ecs::types::Task) -> Task {
    Task {
        arn: t.task_arn().unwrap_or_default().to_string(),
        last_status: t.last_status().unwrap_or_default().into(),
        desired_status: t.desired_status().unwrap_or_default().into(),
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
        tags: tag_map(t.tags().iter().map(|tag| (tag.key(), tag.value()))),
    }
}

/// Every page of a ListTasks.
async fn task_arns(list: ListTasksFluentBuilder) -> Result<Vec<String>> {
    list.into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<_, _>>()
        .await
        .map_err(|e| aws("ecs", "ListTasks", e))
}

/// Reading tasks.
impl Ecs {
    /// Every task placed on the container instance that has not yet stopped. Tasks ECS
    /// is stopping have desired status STOPPED but still run, so both lists are read and
    /// each task is judged by its described `lastStatus`.
    pub async fn tasks_on(&self, cluster: &str, container_instance_arn: &str) -> Result<Vec<Task>> {
        let mut arns = BTreeSet::new();
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let list = self
                .client
                .list_tasks()
                .cluster(cluster)
                .container_instance(container_instance_arn)
                .desired_status(desired);
            arns.extend(task_arns(list).await?);
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

    /// The service's tasks that are to run (desired status RUNNING), described.
    pub async fn service_tasks(&self, cluster: &str, service: &str) -> Result<Vec<Task>> {
        let list = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Running);
        self.describe_tasks(cluster, &task_arns(list).await?).await
    }

    /// Describes tasks in batches of 100; unknown ARNs are left out.
    pub async fn describe_tasks(&self, cluster: &str, arns: &[String]) -> Result<Vec<Task>> {
        let tasks = self.describe_raw_tasks(cluster, arns, None).await?;
        Ok(tasks.iter().map(task_of).collect())
    }

    /// Describes tasks with their containers, network and tags; unknown ARNs are left out.
    pub async fn describe_task_evidence(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<TaskEvidence>> {
        let tasks = self
            .describe_raw_tasks(cluster, arns, Some(TaskField::Tags))
            .await?;
        Ok(tasks.iter().map(task_evidence).collect())
    }

    /// The stopped tasks ECS still remembers (about an hour) for one service.
    pub async fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<TaskEvidence>> {
        let list = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Stopped);
        self.describe_task_evidence(cluster, &task_arns(list).await?)
            .await
    }

    /// DescribeTasks in batches of 100, optionally with extra fields (tags).
    async fn describe_raw_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        include: Option<TaskField>,
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
}

/// Stopping a task.
impl Ecs {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::aws_error;
    use aws_sdk_ecs::operation::describe_tasks::{DescribeTasksError, DescribeTasksOutput};
    use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
    use aws_sdk_ecs::types::{Container, NetworkBinding, Tag, TransportProtocol};
    use aws_sdk_ecs::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn task(arn: &str, last: &str, desired: &str) -> aws_sdk_ecs::types::Task {
        aws_sdk_ecs::types::Task::builder()
            .task_arn(arn)
            .last_status(last)
            .desired_status(desired)
            .group("service:web")
            .container_instance_arn("arn:ci/1")
            .build()
    }

    #[tokio::test]
    async fn tasks_being_stopped_count_as_running_until_they_are_stopped() {
        let running = mock!(Client::list_tasks)
            .match_requests(|r| r.desired_status() == Some(&DesiredStatus::Running))
            .then_output(|| ListTasksOutput::builder().task_arns("t-run").build());
        let stopped = mock!(Client::list_tasks)
            .match_requests(|r| r.desired_status() == Some(&DesiredStatus::Stopped))
            .then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("t-stopping")
                    .task_arns("t-gone")
                    .build()
            });
        let describe = mock!(Client::describe_tasks).then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(task("t-run", "RUNNING", "RUNNING"))
                .tasks(task("t-stopping", "DEACTIVATING", "STOPPED"))
                .tasks(task("t-gone", "STOPPED", "STOPPED"))
                .build()
        });
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&running, &stopped, &describe]
        ));
        let tasks = ecs.tasks_on("prod", "arn:ci/1").await.unwrap();
        let arns: Vec<&str> = tasks.iter().map(|t| t.arn.as_str()).collect();
        assert_eq!(arns, ["t-run", "t-stopping"]);
        assert_eq!(tasks[1].last_status, TaskStatus::Deactivating);
        assert_eq!(tasks[1].desired_status, TaskStatus::Stopped);
    }

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
            DescribeTasksError::generic(aws_error("ThrottlingException", "Rate exceeded"))
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&throttled]));
        let e = ecs
            .describe_task_evidence("prod", &["arn:task/prod/1".into()])
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.aws_code(), Some("ThrottlingException"));
    }

    #[test]
    fn a_task_runs_until_it_is_stopped_or_deleted() {
        let described = task("t", "STOPPING", "STOPPED");
        assert!(task_of(&described).is_running());
        for gone in ["STOPPED", "DELETED"] {
            assert!(!task_of(&task("t", gone, "STOPPED")).is_running());
        }
        assert_eq!(
            serde_json::to_value(task_of(&described)).unwrap()["last_status"],
            "STOPPING"
        );
    }
}
