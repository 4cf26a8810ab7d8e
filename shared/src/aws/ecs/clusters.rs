//! Clusters: which ones opted in (`ecs-autopilot:managed=true` on an ACTIVE cluster).

use aws_sdk_ecs::types::{Cluster, ClusterField};

use super::Ecs;
use crate::aws::batches;
use crate::error::{aws, Result};

pub const MANAGED_TAG: &str = "ecs-autopilot:managed";

fn is_managed(c: &Cluster) -> bool {
    c.status() == Some("ACTIVE")
        && c.tags()
            .iter()
            .any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some("true"))
}

impl Ecs {
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
        Ok(out.clusters().iter().any(is_managed))
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
            managed.extend(
                out.clusters()
                    .iter()
                    .filter(|c| is_managed(c))
                    .map(|c| c.cluster_name().unwrap_or_default().to_string()),
            );
        }
        Ok(managed)
    }
}
