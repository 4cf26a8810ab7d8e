//! Container instances: the hosts registered in a cluster, found by EC2 instance or
//! listed whole (with the AMI each runs), and set DRAINING or ACTIVE.

use aws_sdk_ecs::operation::list_container_instances::builders::ListContainerInstancesFluentBuilder;
use aws_sdk_ecs::types::ContainerInstanceStatus as SdkStatus;
use serde::Serialize;

use super::Ecs;
use crate::aws::batches;
use crate::error::{aws, Error, Result};

aws_state! {
    /// A container instance's registration status (DescribeContainerInstances' `status`).
    ContainerInstanceStatus {
        Registering = "REGISTERING",
        RegistrationFailed = "REGISTRATION_FAILED",
        Active = "ACTIVE",
        Draining = "DRAINING",
        Deregistering = "DEREGISTERING",
        Inactive = "INACTIVE",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInstance {
    pub arn: String,
    pub ec2_instance_id: String,
    pub status: ContainerInstanceStatus,
    pub agent_connected: bool,
    pub running_tasks_count: i32,
    /// The `ecs.ami-id` attribute the agent reports.
    pub ami_id: Option<String>,
}

fn container_instance_of(ci: &aws_sdk_ecs::types::ContainerInstance) -> ContainerInstance {
    ContainerInstance {
        arn: ci.container_instance_arn().unwrap_or_default().to_string(),
        ec2_instance_id: ci.ec2_instance_id().unwrap_or_default().to_string(),
        status: ci.status().unwrap_or_default().into(),
        agent_connected: ci.agent_connected(),
        running_tasks_count: ci.running_tasks_count(),
        ami_id: ci
            .attributes()
            .iter()
            .find(|a| a.name() == "ecs.ami-id")
            .and_then(|a| a.value())
            .map(str::to_string),
    }
}

/// Every page of a ListContainerInstances.
async fn container_instance_arns(list: ListContainerInstancesFluentBuilder) -> Result<Vec<String>> {
    list.into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<_, _>>()
        .await
        .map_err(|e| aws("ecs", "ListContainerInstances", e))
}

/// Reading container instances.
impl Ecs {
    /// The container instance running on EC2 instance `ec2_instance_id`, if any. The
    /// list filter narrows the search, but the described record decides: a filter that
    /// is ignored or too broad must not make us drain the wrong host.
    pub async fn find_container_instance(
        &self,
        cluster: &str,
        ec2_instance_id: &str,
    ) -> Result<Option<ContainerInstance>> {
        let list = self
            .client
            .list_container_instances()
            .cluster(cluster)
            .filter(format!("ec2InstanceId == {ec2_instance_id}"));
        for batch in batches(&container_instance_arns(list).await?, 100) {
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

    /// Every container instance of a cluster, listed 100 per page and described in
    /// batches of 100; `ami_id` comes from the agent's `ecs.ami-id` attribute, so no EC2
    /// call is needed to see which image a host runs.
    pub async fn container_instances(&self, cluster: &str) -> Result<Vec<ContainerInstance>> {
        let list = self
            .client
            .list_container_instances()
            .cluster(cluster)
            .max_results(100);
        let arns = container_instance_arns(list).await?;
        let mut instances = Vec::with_capacity(arns.len());
        for batch in batches(&arns, 100) {
            instances.extend(self.describe_container_instances(cluster, batch).await?);
        }
        Ok(instances)
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
            .map(container_instance_of)
            .collect())
    }
}

/// Changing a container instance's status.
impl Ecs {
    /// Sets the container instance DRAINING; already DRAINING is success.
    pub async fn set_draining(&self, cluster: &str, container_instance_arn: &str) -> Result<()> {
        self.set_state(cluster, container_instance_arn, SdkStatus::Draining)
            .await
    }

    /// Sets the container instance ACTIVE again (a host back from a warm pool or a
    /// stop); already ACTIVE is success.
    pub async fn set_active(&self, cluster: &str, container_instance_arn: &str) -> Result<()> {
        self.set_state(cluster, container_instance_arn, SdkStatus::Active)
            .await
    }

    async fn set_state(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        status: SdkStatus,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_container_instances::DescribeContainerInstancesOutput;
    use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
    use aws_sdk_ecs::operation::update_container_instances_state::UpdateContainerInstancesStateOutput;
    use aws_sdk_ecs::types::Failure;
    use aws_sdk_ecs::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn ci(arn: &str, ec2: &str) -> aws_sdk_ecs::types::ContainerInstance {
        aws_sdk_ecs::types::ContainerInstance::builder()
            .container_instance_arn(arn)
            .ec2_instance_id(ec2)
            .status("ACTIVE")
            .agent_connected(true)
            .build()
    }

    #[tokio::test]
    async fn the_described_record_decides_which_host_matches_not_the_list_filter() {
        // An emulator (or a too-broad filter) returns every instance of the cluster.
        let list = mock!(Client::list_container_instances).then_output(|| {
            ListContainerInstancesOutput::builder()
                .container_instance_arns("arn:ci/1")
                .container_instance_arns("arn:ci/2")
                .build()
        });
        let describe = mock!(Client::describe_container_instances).then_output(|| {
            DescribeContainerInstancesOutput::builder()
                .container_instances(ci("arn:ci/1", "i-0other"))
                .container_instances(ci("arn:ci/2", "i-0aaa"))
                .build()
        });
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&list, &describe]
        ));
        let found = ecs.find_container_instance("prod", "i-0aaa").await.unwrap();
        let found = found.unwrap();
        assert_eq!(found.arn, "arn:ci/2");
        assert_eq!(found.status, ContainerInstanceStatus::Active);
        assert!(ecs
            .find_container_instance("prod", "i-0none")
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_refused_state_change_is_an_error() {
        let rule = mock!(Client::update_container_instances_state).then_output(|| {
            UpdateContainerInstancesStateOutput::builder()
                .failures(Failure::builder().arn("arn:ci/1").reason("MISSING").build())
                .build()
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&rule]));
        let err = ecs.set_draining("prod", "arn:ci/1").await.unwrap_err();
        assert_eq!(err.aws_code(), Some("MISSING"));
    }

    #[test]
    fn statuses_keep_aws_spelling_including_ones_added_later() {
        assert_eq!(
            ContainerInstanceStatus::from("DRAINING"),
            ContainerInstanceStatus::Draining
        );
        let later = ContainerInstanceStatus::from("HIBERNATING");
        assert_eq!(later, ContainerInstanceStatus::Other("HIBERNATING".into()));
        assert_eq!(
            serde_json::json!({ "status": later, "was": ContainerInstanceStatus::Active }),
            serde_json::json!({ "status": "HIBERNATING", "was": "ACTIVE" })
        );
    }
}
