//! Launch templates: which image a version launches, and new versions with another
//! image.

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
        let token: String = format!("ecs-autopilot-{template_id}-{source_version}-{target_ami}")
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
    use crate::testing::aws_error;
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
            CreateLaunchTemplateVersionError::generic(aws_error(
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ))
        });
        let ec2 = Ec2::new(mock_client!(aws_sdk_ec2, [&rule]));
        let e = ec2
            .create_version_with_image("lt-1", 1, "ami-0abc", "ami-0abc", "d")
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }
}
