//! EC2: instance tags (quarantine markers), scheduled events (retirements) and launch
//! templates (AMI rollout).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Tag;
use aws_sdk_ec2::Client;
use chrono::{DateTime, Utc};

use crate::error::{aws, Result};

#[derive(Clone, Debug)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    pub fn new(client: Client) -> Self {
        Ec2 { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Adds (or overwrites) tags on an instance.
    pub async fn tag_instance(&self, instance_id: &str, tags: &[(&str, &str)]) -> Result<()> {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect();
        self.client
            .create_tags()
            .resources(instance_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws("ec2", "CreateTags", e))?;
        Ok(())
    }
}

/// An EC2 scheduled event of an instance (retirement, stop, reboot, maintenance), as
/// DescribeInstanceStatus reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScheduledEvent {
    /// `instance-retirement`, `instance-stop`, `instance-reboot`, `system-reboot`,
    /// `system-maintenance`.
    pub code: String,
    /// The earliest time AWS acts.
    pub not_before: Option<DateTime<Utc>>,
}

impl Ec2 {
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
}

/// AMI rollout: which image a launch template version launches, and new versions with
/// another image.
pub mod launch_templates {
    use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResponseLaunchTemplateData};
    use serde::Serialize;

    use super::Ec2;
    use crate::error::{aws, Error, Result};

    const RESOLVE_SSM: &str = "resolve:ssm:";

    /// What a launch template's `ImageId` holds.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum ImageRef {
        /// A literal AMI id, e.g. what CloudFormation or CDK resolved at deploy time.
        Ami { image_id: String },
        /// `resolve:ssm:NAME` (EC2 reads the parameter at every launch), optionally pinned
        /// to a version or label (`NAME:3`, `NAME:golden`).
        Parameter {
            name: String,
            selector: Option<String>,
        },
        /// Anything else (a parameter ARN, an empty ImageId, ...).
        Other { value: String },
    }

    impl ImageRef {
        pub fn parse(image_id: Option<&str>) -> Self {
            let value = image_id.unwrap_or_default().trim();
            match value.strip_prefix(RESOLVE_SSM) {
                Some(rest) if !rest.is_empty() && !rest.starts_with("arn:") => {
                    let (name, selector) = match rest.split_once(':') {
                        Some((n, s)) => (n, Some(s.to_string())),
                        None => (rest, None),
                    };
                    ImageRef::Parameter {
                        name: name.to_string(),
                        selector,
                    }
                }
                _ if crate::aws::ssm::is_ami_id(value) => ImageRef::Ami {
                    image_id: value.to_string(),
                },
                _ => ImageRef::Other {
                    value: value.to_string(),
                },
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct TemplateVersion {
        pub template_id: String,
        pub template_name: String,
        pub version: i64,
        pub is_default: bool,
        pub image: ImageRef,
    }

    fn image_of(data: Option<&ResponseLaunchTemplateData>) -> ImageRef {
        ImageRef::parse(data.and_then(|d| d.image_id()))
    }

    impl Ec2 {
        /// Describes versions (numbers, `$Latest`, `$Default`) of one launch template,
        /// named by id or, failing that, by name.
        pub async fn launch_template_versions(
            &self,
            id: Option<&str>,
            name: Option<&str>,
            versions: &[String],
        ) -> Result<Vec<TemplateVersion>> {
            let out = self
                .client
                .describe_launch_template_versions()
                .set_launch_template_id(id.map(str::to_string))
                .set_launch_template_name(if id.is_some() {
                    None
                } else {
                    name.map(str::to_string)
                })
                .set_versions(Some(versions.to_vec()))
                .send()
                .await
                .map_err(|e| aws("ec2", "DescribeLaunchTemplateVersions", e))?;
            Ok(out
                .launch_template_versions()
                .iter()
                .map(|v| TemplateVersion {
                    template_id: v.launch_template_id().unwrap_or_default().to_string(),
                    template_name: v.launch_template_name().unwrap_or_default().to_string(),
                    version: v.version_number().unwrap_or_default(),
                    is_default: v.default_version().unwrap_or_default(),
                    image: image_of(v.launch_template_data()),
                })
                .collect())
        }

        /// Creates a version that copies `source_version` with another `ImageId` (an AMI,
        /// or `resolve:ssm:NAME`). The client token, from the template, the source and
        /// `target_ami` (the AMI the version is for), makes a repeated call (a
        /// redelivered event) return the same version, and a later AMI a new one.
        pub async fn create_version_with_image(
            &self,
            template_id: &str,
            source_version: i64,
            image_id: &str,
            target_ami: &str,
            description: &str,
        ) -> Result<TemplateVersion> {
            let token: String =
                format!("ecs-autopilot-{template_id}-{source_version}-{target_ami}")
                    .chars()
                    .take(64)
                    .collect();
            let out = self
                .client
                .create_launch_template_version()
                .launch_template_id(template_id)
                .source_version(source_version.to_string())
                .version_description(description.chars().take(255).collect::<String>())
                .client_token(token)
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id(image_id)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| aws("ec2", "CreateLaunchTemplateVersion", e))?;
            let v = out.launch_template_version().ok_or_else(|| Error::Aws {
                service: "ec2",
                operation: "CreateLaunchTemplateVersion",
                code: "EmptyResponse".into(),
                message: "no launch template version in the response".into(),
                retryable: true,
            })?;
            Ok(TemplateVersion {
                template_id: v.launch_template_id().unwrap_or(template_id).to_string(),
                template_name: v.launch_template_name().unwrap_or_default().to_string(),
                version: v.version_number().unwrap_or_default(),
                is_default: v.default_version().unwrap_or_default(),
                image: image_of(v.launch_template_data()),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use aws_sdk_ec2::operation::create_launch_template_version::CreateLaunchTemplateVersionError;
        use aws_sdk_ec2::Client;
        use aws_smithy_mocks::{mock, mock_client};

        #[test]
        fn image_ids_are_read_as_parameters_literal_amis_or_other() {
            assert_eq!(
                ImageRef::parse(Some("resolve:ssm:/aws/service/ecs/x/image_id")),
                ImageRef::Parameter {
                    name: "/aws/service/ecs/x/image_id".into(),
                    selector: None
                }
            );
            assert_eq!(
                ImageRef::parse(Some("resolve:ssm:/team/ami:7")),
                ImageRef::Parameter {
                    name: "/team/ami".into(),
                    selector: Some("7".into())
                }
            );
            assert_eq!(
                ImageRef::parse(Some("ami-0abc")),
                ImageRef::Ami {
                    image_id: "ami-0abc".into()
                }
            );
            assert!(matches!(ImageRef::parse(None), ImageRef::Other { .. }));
            assert!(matches!(
                ImageRef::parse(Some("resolve:ssm:arn:aws:ssm:us-east-1:1:parameter/x")),
                ImageRef::Other { .. }
            ));
        }

        #[tokio::test]
        async fn a_throttled_version_create_is_retryable() {
            let rule = mock!(Client::create_launch_template_version).then_error(|| {
                CreateLaunchTemplateVersionError::generic(
                    aws_sdk_ec2::error::ErrorMetadata::builder()
                        .code("RequestLimitExceeded")
                        .message("Request limit exceeded.")
                        .build(),
                )
            });
            let ec2 = Ec2::new(mock_client!(aws_sdk_ec2, [&rule]));
            let e = ec2
                .create_version_with_image("lt-1", 1, "ami-0abc", "ami-0abc", "d")
                .await
                .unwrap_err();
            assert!(e.is_retryable(), "{e}");
        }
    }
}

/// AMIs as a rollout compares them: what an image can run on and which OS family it is.
pub mod images {
    use std::collections::BTreeMap;

    use aws_sdk_ec2::types::Filter;
    use serde::Serialize;

    use super::Ec2;
    use crate::error::{aws, Result};

    /// Values per `image-id` filter in one DescribeImages call (EC2 accepts up to 200).
    const IDS_PER_CALL: usize = 200;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Image {
        pub image_id: String,
        /// `x86_64`, `arm64`, `i386`, `x86_64_mac`, `arm64_mac`.
        pub architecture: String,
        /// `windows` for Windows AMIs, empty otherwise (EC2's `Platform`).
        pub platform: String,
        /// `Linux/UNIX`, `Windows`, `Red Hat Enterprise Linux`, ... (billing platform).
        pub platform_details: String,
        /// `hvm` or `paravirtual`.
        pub virtualization_type: String,
        pub name: String,
        pub description: String,
        /// `amazon` for AMIs AWS publishes.
        pub owner_alias: String,
    }

    impl Ec2 {
        /// The images of `ids` that EC2 still describes (deprecated and disabled ones
        /// included); an id missing from the answer is unknown (deregistered, or not
        /// shared with this account). Filtered by `image-id` rather than `ImageIds`, so
        /// one unknown id does not fail the whole call.
        pub async fn images(&self, ids: &[String]) -> Result<BTreeMap<String, Image>> {
            let mut found = BTreeMap::new();
            for chunk in ids.chunks(IDS_PER_CALL) {
                let out = self
                    .client
                    .describe_images()
                    .filters(
                        Filter::builder()
                            .name("image-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .include_deprecated(true)
                    .include_disabled(true)
                    .send()
                    .await
                    .map_err(|e| aws("ec2", "DescribeImages", e))?;
                for i in out.images() {
                    let Some(id) = i.image_id() else { continue };
                    found.insert(
                        id.to_string(),
                        Image {
                            image_id: id.to_string(),
                            architecture: i
                                .architecture()
                                .map(|a| a.as_str().to_string())
                                .unwrap_or_default(),
                            platform: i
                                .platform()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default(),
                            platform_details: i.platform_details().unwrap_or_default().to_string(),
                            virtualization_type: i
                                .virtualization_type()
                                .map(|v| v.as_str().to_string())
                                .unwrap_or_default(),
                            name: i.name().unwrap_or_default().to_string(),
                            description: i.description().unwrap_or_default().to_string(),
                            owner_alias: i.image_owner_alias().unwrap_or_default().to_string(),
                        },
                    );
                }
            }
            Ok(found)
        }
    }
}

/// Evidence and isolation for a compromised host or task (guardduty-responder): EBS
/// snapshots tagged with the finding, and network interfaces moved to a quarantine
/// security group.
pub mod evidence {
    use aws_sdk_ec2::types::{
        CopyTagsFromSource, Filter, InstanceSpecification, ResourceType, Tag, TagSpecification,
    };

    use std::collections::BTreeMap;

    use super::Ec2;
    use crate::error::{aws, Result};

    /// A network interface and the security groups it is in now.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Interface {
        pub id: String,
        pub groups: Vec<String>,
    }

    /// What isolating and quarantining a host needs to know of it.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct HostNetwork {
        pub interfaces: Vec<Interface>,
        pub tags: BTreeMap<String, String>,
    }

    impl Ec2 {
        /// Our snapshots carrying tag `key=value` (a finding id): how a redelivered
        /// finding knows its evidence was already taken.
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
            let tags: Vec<Tag> = tags
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect();
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
                        .set_tags(Some(tags))
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

        /// An instance's network interfaces with their security groups (bridge and host
        /// networking share them with every task on it), and its tags: whether it is
        /// already isolated or marked quarantined. An instance EC2 does not know has
        /// neither.
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
                tags: instance
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect(),
            })
        }

        /// Replaces the security groups of a network interface.
        pub async fn set_network_interface_groups(
            &self,
            network_interface_id: &str,
            groups: &[String],
        ) -> Result<()> {
            self.client
                .modify_network_interface_attribute()
                .network_interface_id(network_interface_id)
                .set_groups(Some(groups.to_vec()))
                .send()
                .await
                .map_err(|e| aws("ec2", "ModifyNetworkInterfaceAttribute", e))?;
            Ok(())
        }
    }
}
