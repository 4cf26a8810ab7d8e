//! Services: reading one (status, tags, deployment state), finding the DAEMON ones and
//! those still deploying or carrying a tag, replacing a service's tasks with a forced
//! deployment.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::{DeploymentRolloutState, SchedulingStrategy, ServiceField};
use serde::Serialize;

use super::Ecs;
use crate::aws::{batches, tag_map};
use crate::error::{aws, Result};

/// A service: whether it still runs, how it deploys, and its tags (where markers a
/// caller leaves on it live).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDescription {
    pub arn: String,
    pub name: String,
    pub cluster_arn: String,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub tags: BTreeMap<String, String>,
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

/// What became of a forced deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployOutcome {
    Started,
    /// The service was deleted (or is being deleted) meanwhile: its tasks are going anyway.
    ServiceGone,
}

/// A service has a deployment still rolling out: `rolloutState` IN_PROGRESS, or, where
/// AWS gives no rollout state (older deployments), more than one deployment.
fn deploying(s: &aws_sdk_ecs::types::Service) -> bool {
    let deployments = s.deployments();
    deployments
        .iter()
        .any(|d| d.rollout_state() == Some(&DeploymentRolloutState::InProgress))
        || (deployments.len() > 1 && deployments.iter().all(|d| d.rollout_state().is_none()))
}

fn service_description(s: &aws_sdk_ecs::types::Service) -> ServiceDescription {
    ServiceDescription {
        arn: s.service_arn().unwrap_or_default().to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        tags: tag_map(s.tags().iter().map(|t| (t.key(), t.value()))),
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

/// Reading services.
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
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|e| aws("ecs", "DescribeServices", e))?;
        Ok(out.services().first().map(service_description))
    }

    /// Which of `services` use the DAEMON scheduling strategy.
    pub async fn daemon_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<BTreeSet<String>> {
        let mut daemons = BTreeSet::new();
        daemons.extend(
            self.described_services(cluster, services, false)
                .await?
                .iter()
                .filter(|s| s.scheduling_strategy() == Some(&SchedulingStrategy::Daemon))
                .map(|s| s.service_name().unwrap_or_default().to_string()),
        );
        Ok(daemons)
    }

    /// Names of the cluster's services with a deployment still rolling out (ListServices,
    /// then DescribeServices 10 at a time).
    pub async fn services_deploying(&self, cluster: &str) -> Result<Vec<String>> {
        Ok(self
            .every_service(cluster, false)
            .await?
            .iter()
            .filter(|s| s.status() == Some("ACTIVE") && deploying(s))
            .map(|s| s.service_name().unwrap_or_default().to_string())
            .collect())
    }

    /// Each service of the cluster that carries tag `key`, by name, with the tag's value
    /// (ListServices, then DescribeServices with tags 10 at a time).
    pub async fn services_tagged(&self, cluster: &str, key: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .every_service(cluster, true)
            .await?
            .iter()
            .filter_map(|s| {
                let value = s.tags().iter().find(|t| t.key() == Some(key))?.value()?;
                Some((
                    s.service_name().unwrap_or_default().to_string(),
                    value.to_string(),
                ))
            })
            .collect())
    }

    /// Every service of the cluster described, with its tags if `tags`: one ListServices
    /// per 100 services, then [`Ecs::described_services`].
    async fn every_service(
        &self,
        cluster: &str,
        tags: bool,
    ) -> Result<Vec<aws_sdk_ecs::types::Service>> {
        let arns: Vec<String> = self
            .client
            .list_services()
            .cluster(cluster)
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| aws("ecs", "ListServices", e))?;
        self.described_services(cluster, &arns, tags).await
    }

    /// DescribeServices, 10 services (its limit) per call, with their tags if `tags`.
    async fn described_services(
        &self,
        cluster: &str,
        services: &[String],
        tags: bool,
    ) -> Result<Vec<aws_sdk_ecs::types::Service>> {
        let mut found = vec![];
        for batch in batches(services, 10) {
            let out = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch))
                .set_include(tags.then(|| vec![ServiceField::Tags]))
                .send()
                .await
                .map_err(|e| aws("ecs", "DescribeServices", e))?;
            found.extend(out.services().iter().cloned());
        }
        Ok(found)
    }
}

/// Changing a service.
impl Ecs {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::aws_error;
    use aws_sdk_ecs::operation::update_service::UpdateServiceError;
    use aws_sdk_ecs::types::error::{ServerException, ServiceNotActiveException};
    use aws_sdk_ecs::Client;
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn forcing_a_deployment_of_a_deleted_service_is_not_an_error() {
        let gone = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::ServiceNotActiveException(
                ServiceNotActiveException::builder()
                    .message("Service was not ACTIVE.")
                    .meta(aws_error(
                        "ServiceNotActiveException",
                        "Service was not ACTIVE.",
                    ))
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
                    .meta(aws_error("ServerException", "boom"))
                    .build(),
            )
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&fault]));
        let e = ecs.force_new_deployment("prod", "web").await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.aws_code(), Some("ServerException"));
    }

    /// Only services carrying the tag, with its value; the describe asks for tags (a
    /// describe without them would find none).
    #[tokio::test]
    async fn services_tagged_describes_with_tags_and_keeps_those_carrying_the_key() {
        use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
        use aws_sdk_ecs::operation::list_services::ListServicesOutput;
        use aws_sdk_ecs::types::{Service, Tag};
        let list = mock!(Client::list_services)
            .match_requests(|r| r.max_results() == Some(100))
            .then_output(|| {
                ListServicesOutput::builder()
                    .service_arns("arn:web")
                    .service_arns("arn:api")
                    .build()
            });
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let describe = mock!(Client::describe_services)
            .match_requests(|r| r.include() == [ServiceField::Tags])
            .then_output(move || {
                DescribeServicesOutput::builder()
                    .services(
                        Service::builder()
                            .service_name("web")
                            .tags(tag("owner", "x"))
                            .tags(tag("scheduled", "m1 m2"))
                            .build(),
                    )
                    .services(
                        Service::builder()
                            .service_name("api")
                            .tags(tag("owner", "y"))
                            .build(),
                    )
                    .build()
            });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&list, &describe]));
        assert_eq!(
            ecs.services_tagged("prod", "scheduled").await.unwrap(),
            [("web".to_string(), "m1 m2".to_string())]
        );
    }
}
