//! Task definitions: as ECS describes them, and the images their containers name.

use serde::Serialize;

use super::Ecs;
use crate::error::{aws, Result};

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

impl Ecs {
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
