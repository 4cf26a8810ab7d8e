//! How a group launches instances: a launch template (directly or inside a mixed
//! instances policy, with per-type overrides) or a launch configuration.

use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification};
use serde::Serialize;

/// A launch template as a group (or a refresh) refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchTemplateRef {
    pub id: Option<String>,
    pub name: Option<String>,
    /// A number, `$Latest` or `$Default`; AWS reads a missing version as `$Default`.
    pub version: String,
}

impl LaunchTemplateRef {
    pub(super) fn from_spec(spec: &LaunchTemplateSpecification) -> Self {
        LaunchTemplateRef {
            id: spec.launch_template_id().map(str::to_string),
            name: spec.launch_template_name().map(str::to_string),
            version: spec.version().unwrap_or("$Default").to_string(),
        }
    }

    /// The SDK specification naming this template: by id when there is one (AWS
    /// refuses both), else by name.
    pub(super) fn to_spec(&self) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .set_launch_template_id(self.id.clone())
            .set_launch_template_name(if self.id.is_some() {
                None
            } else {
                self.name.clone()
            })
            .version(&self.version)
            .build()
    }

    /// The id, else the name: what people recognise in a notification.
    pub fn label(&self) -> &str {
        self.id
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or_default()
    }
}

/// How a group launches instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LaunchSource {
    LaunchTemplate {
        template: LaunchTemplateRef,
    },
    /// A mixed instances policy around a launch template.
    MixedInstances {
        template: LaunchTemplateRef,
    },
    LaunchConfiguration {
        name: String,
    },
    Unknown,
}

/// One override of a mixed instances policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// None for an override by instance requirements (attribute-based selection).
    pub instance_type: Option<String>,
    /// Its own launch template; None: the policy's.
    pub template: Option<LaunchTemplateRef>,
}

pub(super) fn launch_source_of(g: &AutoScalingGroup) -> LaunchSource {
    let mixed = g
        .mixed_instances_policy()
        .and_then(|m| m.launch_template())
        .and_then(|t| t.launch_template_specification());
    match (g.launch_template(), mixed, g.launch_configuration_name()) {
        (Some(spec), _, _) => LaunchSource::LaunchTemplate {
            template: LaunchTemplateRef::from_spec(spec),
        },
        (None, Some(spec), _) => LaunchSource::MixedInstances {
            template: LaunchTemplateRef::from_spec(spec),
        },
        (None, None, Some(name)) => LaunchSource::LaunchConfiguration {
            name: name.to_string(),
        },
        (None, None, None) => LaunchSource::Unknown,
    }
}

pub(super) fn overrides_of(g: &AutoScalingGroup) -> Vec<Override> {
    g.mixed_instances_policy()
        .and_then(|m| m.launch_template())
        .map(|t| t.overrides())
        .unwrap_or_default()
        .iter()
        .map(|o| Override {
            instance_type: o.instance_type().map(str::to_string),
            template: o
                .launch_template_specification()
                .map(LaunchTemplateRef::from_spec),
        })
        .collect()
}
