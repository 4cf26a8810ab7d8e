//! EBS snapshots: of every volume of an instance at once, tagged, and found again by tag.

use aws_sdk_ec2::types::{
    CopyTagsFromSource, Filter, InstanceSpecification, ResourceType, TagSpecification,
};

use super::{sdk_tags, Ec2};
use crate::error::{aws, Result};

impl Ec2 {
    /// Our snapshots carrying tag `key=value`: how a repeated request knows its
    /// snapshots were already taken.
    pub async fn snapshots_tagged(&self, key: &str, value: &str) -> Result<Vec<String>> {
        let out = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .values(value)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws("ec2", "DescribeSnapshots", e))?;
        Ok(out
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id().map(str::to_string))
            .collect())
    }

    /// Crash-consistent snapshots of every EBS volume of an instance, taken at the
    /// same moment, tagged with `tags` and with each volume's own tags.
    pub async fn snapshot_instance(
        &self,
        instance_id: &str,
        description: &str,
        tags: &[(&str, &str)],
    ) -> Result<Vec<String>> {
        let out = self
            .client
            .create_snapshots()
            .instance_specification(
                InstanceSpecification::builder()
                    .instance_id(instance_id)
                    .build(),
            )
            .description(description)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(sdk_tags(tags)))
                    .build(),
            )
            .copy_tags_from_source(CopyTagsFromSource::Volume)
            .send()
            .await
            .map_err(|e| aws("ec2", "CreateSnapshots", e))?;
        Ok(out
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id().map(str::to_string))
            .collect())
    }
}
