//! Launch-template analysis: which versions a rollout reads, how a drifted group is
//! brought to its AMI (refresh as it is, to a new version, to one an earlier attempt
//! made), and the lanes of a mixed instances group whose overrides launch from other
//! templates. Pure: the versions come from DescribeLaunchTemplateVersions.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shared::aws::autoscaling::{
    GroupDetails, InstanceRefresh, LaunchSource, LaunchTemplateRef, RefreshRequest,
};
use shared::aws::ec2::Image;
use shared::aws::ec2::{ImageRef, TemplateVersion};
use shared::aws::ssm::AmiParameter;

use crate::config::Config;
use crate::observe::GroupState;
use crate::tags::{tag, PARAMETER_TAG};

/// The launch template versions a rollout needs: the one the group launches from, and
/// the newest (a version an earlier delivery created may already be there).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub current: Option<TemplateVersion>,
    pub latest: Option<TemplateVersion>,
}

/// The template a group launches from, if any.
pub fn template_of(launch: &LaunchSource) -> Option<&LaunchTemplateRef> {
    match launch {
        LaunchSource::LaunchTemplate { template } | LaunchSource::MixedInstances { template } => {
            Some(template)
        }
        _ => None,
    }
}

/// The versions to read for `template`: the one it names and, unless that is already
/// it, `$Latest` (one call for both).
pub fn versions_to_read(template: &LaunchTemplateRef) -> Vec<String> {
    let mut versions = vec![template.version.clone()];
    if template.version != "$Latest" {
        versions.push("$Latest".into());
    }
    versions
}

/// The group's version and the newest among the versions read.
pub fn pick(template: &LaunchTemplateRef, found: &[TemplateVersion]) -> Templates {
    let latest = found.iter().max_by_key(|v| v.version).cloned();
    let current = match template.version.as_str() {
        "$Latest" => latest.clone(),
        "$Default" => found.iter().find(|v| v.is_default).cloned(),
        number => found
            .iter()
            .find(|v| number.parse() == Ok(v.version))
            .cloned(),
    };
    Templates { current, latest }
}

/// How a drifted group is brought to its AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum RollMode {
    /// Replace instances with the group's current configuration: its launch template
    /// resolves the parameter at launch (`resolve:ssm:`), or already names the AMI.
    Current,
    /// Create a launch template version with the AMI, then refresh to it.
    NewVersion {
        template_id: String,
        source_version: i64,
        /// The ImageId of the new version: the AMI, or (resolve:ssm templates in a
        /// bounded window) the template's own `resolve:ssm:NAME`.
        image_id: String,
        /// The AMI the rollout brings (part of the version's client token).
        target_ami: String,
        /// Refresh to the new version's number (else to `$Latest`).
        pin: bool,
    },
    /// A version with the AMI already exists (an earlier attempt made it): refresh to it.
    ExistingVersion { template: LaunchTemplateRef },
}

/// Why a group's launch templates don't allow a rollout (notices words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    /// Lanes whose templates name a literal AMI (their labels).
    LiteralLanes(Vec<String>),
    NoTemplate,
    VersionUnread {
        version: String,
        template: String,
    },
    /// The template resolves another parameter than the group follows, or a pinned one.
    OtherParameter {
        template_id: String,
        version: i64,
        name: String,
        selector: Option<String>,
        parameter: String,
    },
    /// A mixed instances policy around a template with a literal AMI.
    MixedLiteral {
        template_id: String,
    },
    /// An ImageId that is neither an AMI id nor `resolve:ssm:NAME`.
    OtherImage {
        template_id: String,
        version: i64,
        value: String,
    },
}

/// One launch template of a mixed instances group and the parameter its instances
/// follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lane {
    pub template: LaunchTemplateRef,
    pub image: ImageRef,
    pub parameter: String,
    pub instances: Vec<String>,
}

/// Why a lane group's drift cannot be judged (notices words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneProblem {
    NoMixedPolicy,
    UnknownType {
        instance: String,
    },
    /// An instance type no override names, with a requirements override on its own
    /// template.
    NoOverrideMatch {
        instance: String,
        kind: String,
    },
    VersionUnread {
        version: String,
        template: String,
    },
    Pinned {
        template_id: String,
        version: i64,
        name: String,
        pin: String,
    },
    LiteralUnknownArch {
        template_id: String,
        version: i64,
        image_id: String,
    },
    LiteralUntagged {
        template_id: String,
        version: i64,
        image_id: String,
        arch: String,
        instances: usize,
    },
    OtherImage {
        template_id: String,
        version: i64,
        value: String,
    },
}

/// Why a halted refresh can't be resumed (notices words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotResumable {
    MixedInstances,
    NoDesiredTemplate,
}

/// Whether the group is a mixed instances group whose overrides launch some instance
/// types from other launch templates (often another AMI per architecture): its drift is
/// judged per lane, each instance against the parameter its template follows.
pub fn has_lanes(details: &GroupDetails) -> bool {
    let LaunchSource::MixedInstances { template } = &details.launch else {
        return false;
    };
    details
        .overrides
        .iter()
        .filter_map(|o| o.template.as_ref())
        .any(|o| o.label() != template.label() || o.version != template.version)
}

/// The launch templates (policy's first) a lane group launches from.
pub fn lane_templates(details: &GroupDetails) -> Vec<LaunchTemplateRef> {
    let LaunchSource::MixedInstances { template } = &details.launch else {
        return vec![];
    };
    let mut out = vec![template.clone()];
    for t in details.overrides.iter().filter_map(|o| o.template.as_ref()) {
        if !out.iter().any(|o| lane_key(o) == lane_key(t)) {
            out.push(t.clone());
        }
    }
    out
}

/// How lanes are keyed: template id (or name) and version as the group names them.
pub fn lane_key(t: &LaunchTemplateRef) -> String {
    format!("{}@{}", t.label(), t.version)
}

/// Each lane of a lane group — the template it launches from, the parameter that
/// template follows and its in-service instances — or why the group's drift cannot be
/// judged (it is then reported, never rolled). `versions`: the version each lane's
/// template names, by `lane_key`; `images`: described AMIs; `running`: in-service
/// instance → AMI.
///
/// A template with `resolve:ssm:NAME` follows NAME. A literal AMI can't tell which
/// parameter it came from: the group's `ecs-autopilot:ami-parameter:<architecture>` tag
/// for that AMI's architecture says it (the plain tag can't: it names one parameter
/// for every lane).
pub fn lanes(
    details: &GroupDetails,
    versions: &BTreeMap<String, TemplateVersion>,
    images: &BTreeMap<String, Image>,
    running: &BTreeMap<String, Option<String>>,
) -> Result<Vec<Lane>, LaneProblem> {
    let templates = lane_templates(details);
    let Some(policy) = templates.first() else {
        return Err(LaneProblem::NoMixedPolicy);
    };
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for instance in running.keys() {
        let Some(kind) = details.instance_types.get(instance) else {
            return Err(LaneProblem::UnknownType {
                instance: instance.clone(),
            });
        };
        let by_type = details
            .overrides
            .iter()
            .find(|o| o.instance_type.as_deref() == Some(kind.as_str()));
        let template = match by_type {
            Some(o) => o.template.as_ref().unwrap_or(policy),
            None if details
                .overrides
                .iter()
                .any(|o| o.instance_type.is_none() && o.template.is_some()) =>
            {
                return Err(LaneProblem::NoOverrideMatch {
                    instance: instance.clone(),
                    kind: kind.clone(),
                })
            }
            None => policy,
        };
        members
            .entry(lane_key(template))
            .or_default()
            .push(instance.clone());
    }
    let mut out = vec![];
    for template in templates {
        let key = lane_key(&template);
        let Some(version) = versions.get(&key) else {
            return Err(LaneProblem::VersionUnread {
                version: template.version.clone(),
                template: template.label().to_string(),
            });
        };
        let instances = members.remove(&key).unwrap_or_default();
        let parameter = match &version.image {
            ImageRef::Parameter {
                name,
                selector: None,
            } => name.clone(),
            ImageRef::Parameter {
                name,
                selector: Some(pin),
            } => {
                return Err(LaneProblem::Pinned {
                    template_id: version.template_id.clone(),
                    version: version.version,
                    name: name.clone(),
                    pin: pin.clone(),
                })
            }
            ImageRef::Ami { image_id } => {
                let from_template = images.get(image_id).map(|i| i.architecture.as_str());
                let from_instances: BTreeSet<&str> = instances
                    .iter()
                    .filter_map(|i| running.get(i).cloned().flatten())
                    .filter_map(|ami| images.get(&ami).map(|i| i.architecture.as_str()))
                    .collect();
                let arch = match (from_template, from_instances.iter().next()) {
                    (Some(a), _) => a,
                    (None, Some(a)) if from_instances.len() == 1 => a,
                    _ => {
                        return Err(LaneProblem::LiteralUnknownArch {
                            template_id: version.template_id.clone(),
                            version: version.version,
                            image_id: image_id.clone(),
                        })
                    }
                };
                match tag(details, &format!("{PARAMETER_TAG}:{arch}")) {
                    Some(p) => p.to_string(),
                    None => {
                        return Err(LaneProblem::LiteralUntagged {
                            template_id: version.template_id.clone(),
                            version: version.version,
                            image_id: image_id.clone(),
                            arch: arch.to_string(),
                            instances: instances.len(),
                        })
                    }
                }
            }
            ImageRef::Other { value } => {
                return Err(LaneProblem::OtherImage {
                    template_id: version.template_id.clone(),
                    version: version.version,
                    value: value.clone(),
                })
            }
        };
        out.push(Lane {
            template,
            image: version.image.clone(),
            parameter,
            instances,
        });
    }
    Ok(out)
}

/// Whether a halted refresh can be resumed without replacing what it already
/// replaced: only a refresh to a launch template version (the new instances carry that
/// version, so skip matching leaves them). A mixed instances group is refreshed with
/// its own configuration, where AWS has nothing to tell the new instances by.
pub fn resumable(state: &GroupState, halted: &InstanceRefresh) -> Result<(), NotResumable> {
    if matches!(state.details.launch, LaunchSource::MixedInstances { .. }) {
        return Err(NotResumable::MixedInstances);
    }
    if halted.desired_template.is_none() {
        return Err(NotResumable::NoDesiredTemplate);
    }
    Ok(())
}

/// How to roll a group whose launch template is known, or why it cannot be rolled.
pub fn roll_mode(
    state: &GroupState,
    target: &AmiParameter,
    templates: &Templates,
    config: &Config,
    resume: Option<&InstanceRefresh>,
) -> Result<(RollMode, RefreshRequest), TemplateProblem> {
    if !state.lanes.is_empty() {
        let literal: Vec<String> = state
            .lanes
            .iter()
            .filter(|l| !matches!(l.image, ImageRef::Parameter { selector: None, .. }))
            .map(|l| l.template.label().to_string())
            .collect();
        if !literal.is_empty() {
            return Err(TemplateProblem::LiteralLanes(literal));
        }
        let mut settings = config.refresh.clone();
        settings.skip_matching = false;
        settings.auto_rollback = false;
        return Ok((
            RollMode::Current,
            RefreshRequest {
                settings,
                desired_template: None,
            },
        ));
    }
    let (template, mixed) = match &state.details.launch {
        LaunchSource::LaunchTemplate { template } => (template, false),
        LaunchSource::MixedInstances { template } => (template, true),
        _ => return Err(TemplateProblem::NoTemplate),
    };
    let Some(current) = &templates.current else {
        return Err(TemplateProblem::VersionUnread {
            version: template.version.clone(),
            template: template.label().to_string(),
        });
    };
    // Neither a parameter-resolving template nor $Latest/$Default can be rolled back to.
    let numbered = template.version.parse::<i64>().is_ok();
    let literal = matches!(current.image, ImageRef::Ami { .. });
    // Resuming a halted refresh: the same launch template version, skipping the
    // instances already launched from it, whatever SKIP_MATCHING says.
    if let Some(desired) = resume.and_then(|h| h.desired_template.as_ref()) {
        let expected = if literal {
            ImageRef::Ami {
                image_id: target.image_id.clone(),
            }
        } else {
            current.image.clone()
        };
        // $Latest may since name someone else's version: resume only if it still
        // launches the target.
        let unchanged = desired.version != "$Latest"
            || templates
                .latest
                .as_ref()
                .is_some_and(|l| l.image == expected);
        if unchanged {
            let mut settings = config.refresh.clone();
            settings.skip_matching = true;
            settings.auto_rollback =
                config.refresh.auto_rollback && literal && desired.version.parse::<i64>().is_ok();
            return Ok((
                RollMode::ExistingVersion {
                    template: desired.clone(),
                },
                RefreshRequest {
                    settings,
                    desired_template: Some(desired.clone()),
                },
            ));
        }
    }
    let plain = |mode| {
        let mut settings = config.refresh.clone();
        // Without a desired configuration, skip matching compares instances with the
        // group's own (unchanged) template version and would replace none of them.
        settings.skip_matching = false;
        settings.auto_rollback = false;
        Ok((
            mode,
            RefreshRequest {
                settings,
                desired_template: None,
            },
        ))
    };
    match &current.image {
        ImageRef::Parameter {
            name,
            selector: None,
        } if *name == state.parameter && !mixed && !config.window.is_always() => {
            // In a bounded window a refresh may be halted at the close and resumed in
            // the next one. A refresh without a desired configuration can't skip what
            // it replaced (the template version doesn't change with the parameter), so
            // refresh to a new version, a copy that still resolves the parameter: the
            // new instances carry that version, and skip matching leaves them.
            let mut settings = config.refresh.clone();
            settings.skip_matching = true;
            settings.auto_rollback = false;
            Ok((
                RollMode::NewVersion {
                    template_id: current.template_id.clone(),
                    source_version: current.version,
                    image_id: format!("resolve:ssm:{name}"),
                    target_ami: target.image_id.clone(),
                    pin: template.version != "$Latest",
                },
                RefreshRequest {
                    settings,
                    desired_template: None,
                },
            ))
        }
        ImageRef::Parameter {
            name,
            selector: None,
        } if *name == state.parameter => plain(RollMode::Current),
        ImageRef::Parameter { name, selector } => Err(TemplateProblem::OtherParameter {
            template_id: current.template_id.clone(),
            version: current.version,
            name: name.clone(),
            selector: selector.clone(),
            parameter: state.parameter.clone(),
        }),
        ImageRef::Ami { image_id } if *image_id == target.image_id => plain(RollMode::Current),
        ImageRef::Ami { .. } if mixed => Err(TemplateProblem::MixedLiteral {
            template_id: current.template_id.clone(),
        }),
        ImageRef::Ami { .. } => {
            let mut settings = config.refresh.clone();
            settings.auto_rollback = config.refresh.auto_rollback && numbered && literal;
            let existing = templates.latest.as_ref().filter(|l| {
                l.version > current.version
                    && l.image
                        == ImageRef::Ami {
                            image_id: target.image_id.clone(),
                        }
            });
            let pin = template.version != "$Latest";
            let mode = match existing {
                Some(latest) => RollMode::ExistingVersion {
                    template: LaunchTemplateRef {
                        id: Some(latest.template_id.clone()),
                        name: None,
                        version: if pin {
                            latest.version.to_string()
                        } else {
                            "$Latest".into()
                        },
                    },
                },
                None => RollMode::NewVersion {
                    template_id: current.template_id.clone(),
                    source_version: current.version,
                    image_id: target.image_id.clone(),
                    target_ami: target.image_id.clone(),
                    pin,
                },
            };
            let desired_template = match &mode {
                RollMode::ExistingVersion { template } => Some(template.clone()),
                // Filled in once the version exists.
                _ => None,
            };
            Ok((
                mode,
                RefreshRequest {
                    settings,
                    desired_template,
                },
            ))
        }
        ImageRef::Other { value } => Err(TemplateProblem::OtherImage {
            template_id: current.template_id.clone(),
            version: current.version,
            value: value.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: i64, default: bool) -> TemplateVersion {
        TemplateVersion {
            template_id: "lt-1".into(),
            template_name: "web".into(),
            version: n,
            is_default: default,
            image: ImageRef::Ami {
                image_id: format!("ami-{n}"),
            },
        }
    }

    fn named(version: &str) -> LaunchTemplateRef {
        LaunchTemplateRef {
            id: Some("lt-1".into()),
            name: None,
            version: version.into(),
        }
    }

    #[test]
    fn the_named_version_and_latest_are_read_in_one_call_and_picked_apart() {
        assert_eq!(versions_to_read(&named("3")), ["3", "$Latest"]);
        assert_eq!(versions_to_read(&named("$Latest")), ["$Latest"]);
        let found = [version(3, false), version(7, false), version(1, true)];
        let pinned = pick(&named("3"), &found);
        assert_eq!(pinned.current.map(|v| v.version), Some(3));
        assert_eq!(pinned.latest.map(|v| v.version), Some(7));
        assert_eq!(
            pick(&named("$Latest"), &found).current.map(|v| v.version),
            Some(7)
        );
        assert_eq!(
            pick(&named("$Default"), &found).current.map(|v| v.version),
            Some(1)
        );
        // A version not among those read is unknown, never guessed.
        assert!(pick(&named("5"), &found).current.is_none());
    }
}
