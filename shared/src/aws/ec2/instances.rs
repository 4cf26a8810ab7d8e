//! Instances: their tags, the scheduled events AWS announces for them (retirement,
//! stop, reboot, maintenance), and their network interfaces.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{sdk_tags, Ec2, Interface};
use crate::aws::tag_map;
use crate::error::{aws, Result};

/// An EC2 scheduled event of an instance, as DescribeInstanceStatus reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScheduledEvent {
    /// `instance-retirement`, `instance-stop`, `instance-reboot`, `system-reboot`,
    /// `system-maintenance`.
    pub code: String,
    /// The earliest time AWS acts.
    pub not_before: Option<DateTime<Utc>>,
}

/// An instance's network interfaces and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNetwork {
    pub interfaces: Vec<Interface>,
    pub tags: BTreeMap<String, String>,
}

impl Ec2 {
    /// Adds (or overwrites) tags on an instance.
    pub async fn tag_instance(&self, instance_id: &str, tags: &[(&str, &str)]) -> Result<()> {
        self.client
            .create_tags()
            .resources(instance_id)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .map_err(|e| aws("ec2", "CreateTags", e))?;
        Ok(())
    }

    /// The scheduled events of each instance that has any, still to come: AWS keeps a
    /// finished or cancelled event with a description starting `[Completed]` or
    /// `[Canceled]`, and those are left out.
    pub async fn scheduled_events(
        &self,
        instance_ids: &[String],
    ) -> Result<BTreeMap<String, Vec<ScheduledEvent>>> {
        let mut found: BTreeMap<String, Vec<ScheduledEvent>> = BTreeMap::new();
        // DescribeInstanceStatus takes at most 100 instance ids per call.
        for batch in instance_ids.chunks(100) {
            let out = self
                .client
                .describe_instance_status()
                .set_instance_ids(Some(batch.to_vec()))
                .include_all_instances(true)
                .send()
                .await
                .map_err(|e| aws("ec2", "DescribeInstanceStatus", e))?;
            for status in out.instance_statuses() {
                let events: Vec<ScheduledEvent> = status
                    .events()
                    .iter()
                    .filter(|e| {
                        let d = e.description().unwrap_or_default();
                        !d.starts_with("[Completed]") && !d.starts_with("[Canceled]")
                    })
                    .map(|e| ScheduledEvent {
                        code: e.code().map(|c| c.as_str().to_string()).unwrap_or_default(),
                        not_before: e
                            .not_before()
                            .and_then(|t| DateTime::from_timestamp(t.secs(), 0)),
                    })
                    .collect();
                if let (Some(id), false) = (status.instance_id(), events.is_empty()) {
                    found.entry(id.to_string()).or_default().extend(events);
                }
            }
        }
        Ok(found)
    }

    /// An instance's network interfaces with their security groups (bridge and host
    /// networking share them with every task on it), and its tags. An instance EC2 does
    /// not know has neither.
    pub async fn host_network(&self, instance_id: &str) -> Result<HostNetwork> {
        let out = self
            .client
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| aws("ec2", "DescribeInstances", e))?;
        let Some(instance) = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
        else {
            return Ok(HostNetwork::default());
        };
        Ok(HostNetwork {
            interfaces: instance
                .network_interfaces()
                .iter()
                .filter_map(|n| {
                    Some(Interface {
                        id: n.network_interface_id()?.to_string(),
                        groups: n
                            .groups()
                            .iter()
                            .filter_map(|g| g.group_id().map(str::to_string))
                            .collect(),
                    })
                })
                .collect(),
            tags: tag_map(instance.tags().iter().map(|t| (t.key(), t.value()))),
        })
    }
}
