//! Auto Scaling groups: membership, tags and launch setup, reading them and the small
//! changes made to them (a tag, an instance protected or taken out).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter};
use serde::Serialize;

use super::launch::{launch_source_of, overrides_of, LaunchSource, Override};
use super::{AutoScaling, LifecycleState};
use crate::aws::tag_map;
use crate::error::{aws, Result};

pub const CLUSTER_TAG: &str = "ecs-autopilot:cluster";

/// DescribeAutoScalingGroups returns at most 100 groups per page.
const GROUPS_PER_PAGE: i32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInstance {
    pub instance_id: String,
    pub lifecycle_state: LifecycleState,
    pub health_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub instances: Vec<GroupInstance>,
}

impl Group {
    /// The cluster a group opted in for, from its `ecs-autopilot:cluster` tag.
    pub fn cluster(&self) -> Option<&str> {
        self.tags
            .get(CLUSTER_TAG)
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }
}

/// A group with its launch setup and capacity: what replacing its instances needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDetails {
    pub group: Group,
    pub launch: LaunchSource,
    pub desired_capacity: i32,
    /// Instances protected from scale in: a refresh with `Ignore` leaves them alone.
    pub protected: BTreeSet<String>,
    /// A mixed instances policy's overrides, in order. An override with its own
    /// launch template launches its instance type from that template, often with
    /// another AMI (arm64 next to x86_64).
    pub overrides: Vec<Override>,
    /// Instance id → instance type, as the group reports its instances.
    pub instance_types: BTreeMap<String, String>,
}

/// The one mapping of an SDK group to [`Group`].
fn group_of(g: &AutoScalingGroup) -> Group {
    Group {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        tags: tag_map(g.tags().iter().map(|t| (t.key(), t.value()))),
        instances: g
            .instances()
            .iter()
            .map(|i| GroupInstance {
                instance_id: i.instance_id().unwrap_or_default().to_string(),
                lifecycle_state: i
                    .lifecycle_state()
                    .map(|s| s.as_str())
                    .unwrap_or_default()
                    .into(),
                health_status: i.health_status().unwrap_or_default().to_string(),
            })
            .collect(),
    }
}

fn details_of(g: &AutoScalingGroup) -> GroupDetails {
    GroupDetails {
        group: group_of(g),
        launch: launch_source_of(g),
        desired_capacity: g.desired_capacity().unwrap_or_default(),
        protected: g
            .instances()
            .iter()
            .filter(|i| i.protected_from_scale_in().unwrap_or_default())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect(),
        overrides: overrides_of(g),
        instance_types: g
            .instances()
            .iter()
            .filter_map(|i| Some((i.instance_id()?.to_string(), i.instance_type()?.to_string())))
            .collect(),
    }
}

/// Reading groups.
impl AutoScaling {
    pub async fn group(&self, name: &str) -> Result<Option<Group>> {
        Ok(self.described_group(name).await?.as_ref().map(group_of))
    }

    /// A group and whether Capacity Rebalancing is on for it (Auto Scaling then launches a
    /// replacement for a Spot instance with a rebalance recommendation itself).
    pub async fn group_with_capacity_rebalance(&self, name: &str) -> Result<Option<(Group, bool)>> {
        Ok(self
            .described_group(name)
            .await?
            .map(|g| (group_of(&g), g.capacity_rebalance().unwrap_or(false))))
    }

    /// One group by name, with its launch setup.
    pub async fn group_details(&self, name: &str) -> Result<Option<GroupDetails>> {
        Ok(self.described_group(name).await?.as_ref().map(details_of))
    }

    async fn described_group(&self, name: &str) -> Result<Option<AutoScalingGroup>> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DescribeAutoScalingGroups", e))?;
        Ok(out.auto_scaling_groups().first().cloned())
    }

    /// Every group carrying the `ecs-autopilot:cluster` tag, 100 per call.
    pub async fn managed_groups(&self) -> Result<Vec<GroupDetails>> {
        self.groups_tagged(CLUSTER_TAG).await
    }

    /// Groups carrying tag `key` (any value), 100 per call: the few a caller looks at,
    /// without reading every managed group.
    pub async fn groups_tagged(&self, key: &str) -> Result<Vec<GroupDetails>> {
        let filter = Filter::builder().name("tag-key").values(key).build();
        let mut pages = self
            .client
            .describe_auto_scaling_groups()
            .filters(filter)
            .max_records(GROUPS_PER_PAGE)
            .into_paginator()
            .send();
        let mut groups = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("autoscaling", "DescribeAutoScalingGroups", e))?;
            groups.extend(page.auto_scaling_groups().iter().map(details_of));
        }
        Ok(groups)
    }

    /// The group an instance belongs to, if any.
    pub async fn group_of_instance(&self, instance_id: &str) -> Result<Option<String>> {
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DescribeAutoScalingInstances", e))?;
        Ok(out
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.auto_scaling_group_name())
            .map(str::to_string))
    }
}

/// Changes to a group's membership and its own tags.
impl AutoScaling {
    /// Protects an instance from scale-in, so the group never picks it to terminate.
    pub async fn protect_from_scale_in(&self, group: &str, instance_id: &str) -> Result<()> {
        self.client
            .set_instance_protection()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .protected_from_scale_in(true)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "SetInstanceProtection", e))?;
        Ok(())
    }

    /// Takes an instance out of its group without terminating it; the group launches a
    /// replacement because the desired capacity is kept.
    pub async fn detach(&self, group: &str, instance_id: &str) -> Result<()> {
        self.client
            .detach_instances()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DetachInstances", e))?;
        Ok(())
    }

    /// Sets one tag on a group (not propagated to its instances); an existing tag with
    /// the same key is overwritten.
    pub async fn tag_group(&self, group: &str, key: &str, value: &str) -> Result<()> {
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client
            .create_or_update_tags()
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "CreateOrUpdateTags", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
    use aws_sdk_autoscaling::types::{
        Instance, LaunchTemplate, LaunchTemplateSpecification, MixedInstancesPolicy, TagDescription,
    };
    use aws_sdk_autoscaling::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn managed_groups_follow_next_tokens_and_read_the_launch_setup() {
        let lt = LaunchTemplateSpecification::builder()
            .launch_template_id("lt-1")
            .version("3")
            .build();
        let first = mock!(Client::describe_auto_scaling_groups)
            .match_requests(|r| r.next_token().is_none())
            .then_output(move || {
                DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(
                        AutoScalingGroup::builder()
                            .auto_scaling_group_name("a")
                            .launch_template(lt.clone())
                            .tags(
                                TagDescription::builder()
                                    .key(CLUSTER_TAG)
                                    .value("c")
                                    .build(),
                            )
                            .build(),
                    )
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_auto_scaling_groups)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                let mixed = MixedInstancesPolicy::builder()
                    .launch_template(
                        LaunchTemplate::builder()
                            .launch_template_specification(
                                LaunchTemplateSpecification::builder()
                                    .launch_template_name("web")
                                    .build(),
                            )
                            .build(),
                    )
                    .build();
                DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(
                        AutoScalingGroup::builder()
                            .auto_scaling_group_name("b")
                            .mixed_instances_policy(mixed)
                            .build(),
                    )
                    .auto_scaling_groups(
                        AutoScalingGroup::builder()
                            .auto_scaling_group_name("c")
                            .launch_configuration_name("old-lc")
                            .build(),
                    )
                    .build()
            });
        let asg = AutoScaling::new(mock_client!(
            aws_sdk_autoscaling,
            RuleMode::MatchAny,
            [&first, &second]
        ));
        let groups = asg.managed_groups().await.unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].group.cluster(), Some("c"));
        assert!(matches!(
            &groups[0].launch,
            LaunchSource::LaunchTemplate { template } if template.version == "3"
        ));
        assert!(matches!(
            &groups[1].launch,
            LaunchSource::MixedInstances { template } if template.version == "$Default"
        ));
        assert!(matches!(
            &groups[2].launch,
            LaunchSource::LaunchConfiguration { name } if name == "old-lc"
        ));
    }

    #[test]
    fn a_group_and_its_details_read_instances_and_tags_alike() {
        let g = AutoScalingGroup::builder()
            .auto_scaling_group_name("web")
            .tags(TagDescription::builder().key("team").build())
            .instances(
                Instance::builder()
                    .instance_id("i-0aaa")
                    .lifecycle_state(aws_sdk_autoscaling::types::LifecycleState::TerminatingWait)
                    .health_status("Healthy")
                    .protected_from_scale_in(true)
                    .instance_type("m7g.large")
                    .build(),
            )
            .build();
        let group = group_of(&g);
        assert_eq!(group.tags.get("team").map(String::as_str), Some(""));
        assert_eq!(
            group.instances[0].lifecycle_state,
            LifecycleState::TerminatingWait
        );
        let details = details_of(&g);
        assert_eq!(details.group, group);
        assert!(details.protected.contains("i-0aaa"));
        assert_eq!(details.instance_types["i-0aaa"], "m7g.large");
    }
}
