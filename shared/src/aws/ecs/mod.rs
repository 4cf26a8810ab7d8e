//! ECS, one file per resource: clusters, container instances, tasks (and what is kept
//! of them as evidence), services and task definitions.

mod clusters;
mod container_instances;
mod services;
mod task_definitions;
mod tasks;

pub use clusters::MANAGED_TAG;
pub use container_instances::{ContainerInstance, ContainerInstanceStatus};
pub use services::{DeployOutcome, ServiceDescription};
pub use task_definitions::ContainerImage;
pub use tasks::{task_of, AttachmentEvidence, ContainerEvidence, Task, TaskEvidence, TaskStatus};

use aws_sdk_ecs::Client;

use crate::error::{aws, Result};

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
