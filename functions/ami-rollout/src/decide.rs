//! The pure core: from the managed groups, the AMIs their parameters name, the AMIs their
//! instances run, their refreshes and launch templates, decide which groups to roll and
//! what to tell people. No AWS calls here; the plan is data, so it is logged, dry-run
//! and asserted in tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::rollout::{
    GroupDetails, InstanceRefresh, LaunchSource, LaunchTemplateRef, RefreshRequest,
};
use shared::aws::ec2::images::Image;
use shared::aws::ec2::launch_templates::{ImageRef, TemplateVersion};
use shared::aws::ssm::{AmiParameter, AmiParameters};
use shared::events::autoscaling::refresh::{Phase, RefreshEvent};
use shared::notify::{Notice, Outcome, Severity};

use crate::config::Config;
use crate::images;

/// Names the SSM parameter whose AMI the group should run.
pub const PARAMETER_TAG: &str = "ecs-autopilot:ami-parameter";
/// `PARAMETER_TAG:arm64`, `PARAMETER_TAG:x86_64`: the parameter for instances of that
/// architecture (it wins over the plain tag).
/// `paused` stops rollouts of the group (drift is still reported).
pub const ROLLOUT_TAG: &str = "ecs-autopilot:rollout";
/// The instance refresh whose outcome was last reported, written on the group after the
/// report: a repeated outcome event is then "already reported", not a second report.
pub const REPORTED_TAG: &str = "ecs-autopilot:reported-refresh";

/// How many group names a summary lists before it says "and N more".
const LIST_MAX: usize = 20;

/// One managed group and what its instances run.
#[derive(Debug, Clone)]
pub struct GroupState {
    pub details: GroupDetails,
    pub cluster: String,
    /// The cluster carries `ecs-autopilot:managed=true`.
    pub cluster_managed: bool,
    /// The parameter the group follows (its tags, else the default, else the one AWS
    /// publishes for its image's family); empty when `no_parameter` says why not.
    pub parameter: String,
    /// Why no parameter could be chosen: the group is reported, never rolled.
    pub no_parameter: Option<String>,
    /// In-service instance → the AMI its container instance reports (`None`: not
    /// registered in the cluster, or no `ecs.ami-id` attribute).
    pub running: BTreeMap<String, Option<String>>,
}

impl GroupState {
    pub fn name(&self) -> &str {
        &self.details.group.name
    }

    pub fn paused(&self) -> bool {
        is_paused(&self.details)
    }

    /// In-service instances running another AMI than `target`, with that AMI.
    pub fn stale(&self, target: &str) -> BTreeMap<&str, &str> {
        self.running
            .iter()
            .filter_map(|(i, ami)| Some((i.as_str(), ami.as_deref()?)))
            .filter(|(_, ami)| *ami != target)
            .collect()
    }
}

/// Whether choosing the group's parameter needs the images its instances run: it has
/// per-architecture tags, or no tag and no configured default.
pub fn needs_images(details: &GroupDetails, config: &Config) -> bool {
    let tags = &details.group.tags;
    tags.keys()
        .any(|k| k.starts_with(&format!("{PARAMETER_TAG}:")))
        || (tag(details, PARAMETER_TAG).is_none() && config.default_parameter.is_empty())
}

fn tag<'a>(details: &'a GroupDetails, key: &str) -> Option<&'a str> {
    details
        .group
        .tags
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The parameter a group follows, from the images its instances run (`running`: the
/// described ones): the tag for their architecture, else the plain tag, else
/// `DEFAULT_AMI_PARAMETER`, else the parameter AWS publishes for their ECS-optimized
/// family and architecture. A group whose images don't name one answer is not guessed.
pub fn choose_parameter(
    details: &GroupDetails,
    config: &Config,
    running: &[&Image],
) -> Result<String, String> {
    let architectures: BTreeSet<&str> = running.iter().map(|i| i.architecture.as_str()).collect();
    if let [arch] = architectures.iter().copied().collect::<Vec<_>>()[..] {
        if let Some(p) = tag(details, &format!("{PARAMETER_TAG}:{arch}")) {
            return Ok(p.to_string());
        }
    }
    if let Some(p) = tag(details, PARAMETER_TAG) {
        return Ok(p.to_string());
    }
    if !config.default_parameter.is_empty() {
        return Ok(config.default_parameter.clone());
    }
    let amis = || {
        running
            .iter()
            .map(|i| {
                format!(
                    "`{}` ({})",
                    i.image_id,
                    shared::notify::escape(&i.name, 120)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let recommended: BTreeSet<Option<String>> = running
        .iter()
        .map(|i| images::recommended_parameter(i))
        .collect();
    match recommended.into_iter().collect::<Vec<_>>()[..] {
        [Some(ref p)] => Ok(p.clone()),
        [] => Err("none of its instances' images could be described (or none is registered in the cluster yet), so the AMI family it can run is unknown".into()),
        [None] => Err(format!("its instances run {}, not an ECS-optimized AMI AWS publishes a parameter for, so ami-rollout does not guess which image it can run", amis())),
        _ => Err(format!("its instances run images of different families or architectures ({}), so no single parameter fits", amis())),
    }
}

pub fn parameter_of(details: &GroupDetails, config: &Config) -> String {
    details
        .group
        .tags
        .get(PARAMETER_TAG)
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .unwrap_or(&config.default_parameter)
        .to_string()
}

pub fn is_paused(details: &GroupDetails) -> bool {
    details
        .group
        .tags
        .get(ROLLOUT_TAG)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("paused"))
}

/// The launch template versions a rollout needs: the one the group launches from, and
/// the newest (a version an earlier delivery created may already be there).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub current: Option<TemplateVersion>,
    pub latest: Option<TemplateVersion>,
}

/// Everything a check observed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The groups this check is about.
    pub groups: Vec<GroupState>,
    pub parameters: AmiParameters,
    /// Refreshes of every managed group, newest first; empty when nothing could be
    /// rolled (no drift, or the window is closed), because then they are not read.
    pub refreshes: BTreeMap<String, Vec<InstanceRefresh>>,
    /// Launch template versions of the groups that may be rolled.
    pub templates: BTreeMap<String, Templates>,
    /// Images (by AMI id) the instances run and the parameters name, as DescribeImages
    /// answered; an id missing here could not be described.
    pub images: BTreeMap<String, Image>,
    /// Clusters tagged `ecs-autopilot:managed=true`.
    pub managed_clusters: BTreeSet<String>,
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
        image_id: String,
        /// Refresh to the new version's number (else to `$Latest`).
        pin: bool,
    },
    /// A version with the AMI already exists (an earlier attempt made it): refresh to it.
    ExistingVersion { template: LaunchTemplateRef },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Start an instance refresh on a drifted group.
    Roll {
        group: String,
        cluster: String,
        mode: RollMode,
        /// Boxed: it is most of the step's size.
        request: Box<RefreshRequest>,
        notice: Notice,
    },
    /// Only tell people (a skip, a finding, or an outcome).
    Report {
        action: &'static str,
        outcome: Outcome,
        group: Option<String>,
        cluster: Option<String>,
        notice: Notice,
    },
    /// Note on the group that a refresh's outcome was reported (tag `REPORTED_TAG`).
    MarkReported { group: String, refresh_id: String },
}

impl Step {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Roll { .. } => "rollout",
            Step::Report { action, .. } => action,
            Step::MarkReported { .. } => "mark-reported",
        }
    }
}

pub type Plan = Vec<Step>;

fn report(state: &GroupState, action: &'static str, outcome: Outcome, notice: Notice) -> Step {
    Step::Report {
        action,
        outcome,
        group: Some(state.name().to_string()),
        cluster: Some(state.cluster.clone()),
        notice,
    }
}

/// Groups worth reading refreshes and launch templates for: drifted, rollable and
/// allowed to roll now. Empty means the check can stop observing.
pub fn rollable<'a>(
    observed: &'a Observed,
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<&'a GroupState> {
    if !config.window.is_open(now) {
        return vec![];
    }
    observed
        .groups
        .iter()
        .filter(|g| g.cluster_managed && !g.paused())
        .filter(|g| {
            matches!(
                g.details.launch,
                LaunchSource::LaunchTemplate { .. } | LaunchSource::MixedInstances { .. }
            ) && unjudgeable_overrides(g).is_none()
        })
        .filter(|g| {
            observed
                .parameters
                .found
                .get(&g.parameter)
                .is_some_and(|p| !g.stale(&p.image_id).is_empty())
        })
        .collect()
}

/// The groups that may take a rollout slot, oldest drift first, and how many slots are
/// free: launch templates are read in this order only until the slots are filled, so a
/// check of a large drifted fleet reads a handful of templates, not hundreds.
pub fn roll_order<'a>(
    observed: &'a Observed,
    config: &Config,
    now: DateTime<Utc>,
) -> (Vec<&'a GroupState>, usize) {
    let active = observed
        .refreshes
        .values()
        .filter(|rs| rs.iter().any(InstanceRefresh::is_active))
        .count();
    let mut order: Vec<(&GroupState, &AmiParameter)> = rollable(observed, config, now)
        .into_iter()
        .filter_map(|g| Some((g, observed.parameters.found.get(&g.parameter)?)))
        .filter(|(g, target)| {
            let refreshes = observed
                .refreshes
                .get(g.name())
                .map(Vec::as_slice)
                .unwrap_or_default();
            !refreshes.iter().any(InstanceRefresh::is_active)
                && failed_since(refreshes, target.last_modified).is_none()
                && succeeded_since(refreshes, target.last_modified).is_none()
                && image_problem(g, target, &observed.images).is_none()
        })
        .collect();
    order.sort_by(|a, b| (a.1.last_modified, a.0.name()).cmp(&(b.1.last_modified, b.0.name())));
    let slots = config.max_concurrent_rollouts.saturating_sub(active);
    (order.into_iter().map(|(g, _)| g).collect(), slots)
}

/// Whether the group's launch templates (already in `observed`) allow a rollout.
pub fn can_roll(observed: &Observed, group: &str, config: &Config) -> bool {
    let Some(state) = observed.groups.iter().find(|g| g.name() == group) else {
        return false;
    };
    let Some(target) = observed.parameters.found.get(&state.parameter) else {
        return false;
    };
    let templates = observed.templates.get(group).cloned().unwrap_or_default();
    roll_mode(state, target, &templates, config).is_ok()
}

/// A drifted group that may be rolled, waiting for a slot in the budget.
struct Candidate<'a> {
    state: &'a GroupState,
    target: &'a AmiParameter,
    stale: BTreeMap<&'a str, &'a str>,
    mode: RollMode,
    request: RefreshRequest,
}

/// A check of `observed.groups`: roll what drifted, within the window and the budget,
/// oldest drift first; say why the rest was not rolled.
pub fn check(observed: &Observed, config: &Config, now: DateTime<Utc>) -> Plan {
    let mut plan = vec![];
    let mut candidates = vec![];
    let mut waiting_window: Vec<&str> = vec![];
    let mut unread: Vec<&str> = vec![];
    let active: BTreeSet<&str> = observed
        .refreshes
        .iter()
        .filter(|(_, rs)| rs.iter().any(InstanceRefresh::is_active))
        .map(|(g, _)| g.as_str())
        .collect();

    for state in &observed.groups {
        if !state.cluster_managed {
            plan.push(report(
                state,
                "check",
                Outcome::Skipped,
                Notice::info(
                    format!("Not checking {}: cluster {} not opted in", state.name(), state.cluster),
                    format!(
                        "Group `{}` names cluster `{}`, which lacks the tag `ecs-autopilot:managed=true` (or does not exist), so its AMI is neither checked nor rolled.",
                        state.name(), state.cluster
                    ),
                )
                .next_step("Tag the cluster ecs-autopilot:managed=true, or remove the group's ecs-autopilot:cluster tag."),
            ));
            continue;
        }
        if let Some(why) = &state.no_parameter {
            plan.push(report(
                state,
                "check",
                Outcome::Skipped,
                Notice::warning(
                    format!("Not rolling {}: no AMI parameter fits it", state.name()),
                    format!(
                        "Group `{}` has no `{PARAMETER_TAG}` tag and {why}. Its AMI is reported, never rolled, until it names its parameter.",
                        state.name()
                    ),
                )
                .next_step(format!("Tag the group {PARAMETER_TAG} (or {PARAMETER_TAG}:arm64 / {PARAMETER_TAG}:x86_64) with the SSM parameter of the image it should run.")),
            ));
            continue;
        }
        let Some(target) = observed.parameters.found.get(&state.parameter) else {
            let why = observed
                .parameters
                .unusable
                .get(&state.parameter)
                .cloned()
                .unwrap_or_else(|| "parameter not read".into());
            plan.push(report(
                state,
                "check",
                Outcome::Skipped,
                Notice::warning(
                    format!("Cannot check {}: AMI parameter unusable", state.name()),
                    format!(
                        "Group `{}` follows parameter `{}`: {}. Its AMI is not checked or rolled until the parameter names an AMI.",
                        state.name(),
                        shared::notify::escape(&state.parameter, 200),
                        shared::notify::escape(&why, 300)
                    ),
                )
                .detail("parameter", &state.parameter)
                .next_step(format!("Fix the parameter, or point the group's {PARAMETER_TAG} tag at the right one.")),
            ));
            continue;
        };
        let stale = state.stale(&target.image_id);
        if stale.is_empty() {
            continue;
        }
        let facts = drift_facts(state, target, &stale);
        if state.paused() {
            plan.push(report(
                state,
                "rollout",
                Outcome::Skipped,
                Notice::info(
                    format!("{} drifted from {} but rollouts are paused", state.name(), target.image_id),
                    format!("{facts} The group carries `{ROLLOUT_TAG}=paused`, so it is not rolled."),
                )
                .detail("target_ami", &target.image_id)
                .detail("stale_instances", stale.len())
                .next_step(format!("Remove the {ROLLOUT_TAG} tag (or set it to anything but paused) to let the rollout proceed.")),
            ));
            continue;
        }
        let unsupported = match &state.details.launch {
            LaunchSource::LaunchConfiguration { name } => Some(format!(
                "it launches from launch configuration `{name}`; ami-rollout only rolls groups with a launch template"
            )),
            LaunchSource::Unknown => Some("its launch template or configuration could not be read".to_string()),
            _ => unjudgeable_overrides(state),
        };
        if let Some(why) = unsupported {
            plan.push(report(
                state,
                "rollout",
                Outcome::Skipped,
                Notice::warning(
                    format!("Cannot roll {}: unsupported launch setup", state.name()),
                    format!("{facts} It is not rolled: {why}."),
                )
                .detail("target_ami", &target.image_id)
                .next_step("Migrate the group to a launch template (launch configurations are deprecated), then the next check rolls it."),
            ));
            continue;
        }
        if !config.window.is_open(now) {
            waiting_window.push(state.name());
            continue;
        }
        let refreshes = observed
            .refreshes
            .get(state.name())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(running) = refreshes.iter().find(|r| r.is_active()) {
            plan.push(report(
                state,
                "rollout",
                Outcome::AlreadyDone,
                Notice::info(
                    format!("{} is already being refreshed", state.name()),
                    format!(
                        "{facts} Instance refresh `{}` is {} ({}% done); AWS runs one refresh per group at a time, so nothing new was started.",
                        running.id, running.status, running.percentage_complete.unwrap_or_default()
                    ),
                )
                .detail("refresh_id", &running.id)
                .detail("refresh_status", &running.status),
            ));
            continue;
        }
        if let Some(failed) = failed_since(refreshes, target.last_modified) {
            plan.push(report(
                state,
                "rollout",
                Outcome::Skipped,
                Notice::warning(
                    format!("Not retrying {}: last refresh {}", state.name(), failed.status),
                    format!(
                        "{facts} Instance refresh `{}` ended {} ({}) after the parameter last changed, so the same AMI is not rolled again automatically.",
                        failed.id,
                        failed.status,
                        shared::notify::escape(failed.status_reason.as_deref().unwrap_or("no reason given"), 300)
                    ),
                )
                .detail("refresh_id", &failed.id)
                .detail("target_ami", &target.image_id)
                .next_step("Find out why the refresh failed (new instances not joining the cluster, health checks, capacity).")
                .next_step("Publish a fixed AMI to the parameter, or start the instance refresh yourself once the cause is fixed."),
            ));
            continue;
        }
        if let Some(done) = succeeded_since(refreshes, target.last_modified) {
            plan.push(report(
                state,
                "rollout",
                Outcome::Warning,
                Notice::warning(
                    format!("Not refreshing {} again: drift left after a successful refresh", state.name()),
                    format!(
                        "{facts} Instance refresh `{}` ended Successful after the parameter last changed, yet these instances still differ: {}. Another refresh to the same AMI would leave them the same way, so none is started until the parameter names a new AMI.",
                        done.id,
                        left_over(state, &stale, config)
                    ),
                )
                .detail("refresh_id", &done.id)
                .detail("target_ami", &target.image_id)
                .detail("stale_instances", stale.keys().collect::<Vec<_>>())
                .next_step("Replace or unprotect the instances listed, or start an instance refresh yourself once the cause is fixed."),
            ));
            continue;
        }
        if let Some(why) = image_problem(state, target, &observed.images) {
            plan.push(report(
                state,
                "rollout",
                Outcome::Skipped,
                Notice::warning(
                    format!("Not rolling {}: {} is not an image it can run", state.name(), target.image_id),
                    format!("{facts} It is not rolled: {why}."),
                )
                .detail("target_ami", &target.image_id)
                .detail("parameter", &target.name)
                .next_step(format!("Point the group's {PARAMETER_TAG} tag (or {PARAMETER_TAG}:arm64 / :x86_64) at the parameter of an image of its architecture and OS family.")),
            ));
            continue;
        }
        let Some(templates) = observed.templates.get(state.name()) else {
            // Not read: the groups before it in drift order filled the budget.
            unread.push(state.name());
            continue;
        };
        match roll_mode(state, target, templates, config) {
            Ok((mode, request)) => candidates.push(Candidate {
                state,
                target,
                stale,
                mode,
                request,
            }),
            Err(why) => plan.push(report(
                state,
                "rollout",
                Outcome::Skipped,
                Notice::warning(
                    format!("Cannot roll {}: launch template setup", state.name()),
                    format!("{facts} It is not rolled: {why}"),
                )
                .detail("target_ami", &target.image_id)
                .next_step(format!("Point the group's {PARAMETER_TAG} tag at the parameter its launch template resolves, or use a literal AMI id or an unpinned resolve:ssm: in the template.")),
            )),
        }
    }

    // Oldest drift first: a parameter that changed longer ago has waited longer.
    candidates.sort_by(|a, b| {
        (a.target.last_modified, a.state.name()).cmp(&(b.target.last_modified, b.state.name()))
    });
    let slots = config.max_concurrent_rollouts.saturating_sub(active.len());
    let mut waiting_budget = vec![];
    for (n, c) in candidates.into_iter().enumerate() {
        if n >= slots {
            waiting_budget.push(c.state.name());
            continue;
        }
        plan.push(roll_step(c));
    }
    waiting_budget.extend(unread);
    if let Some(summary) = waiting(&waiting_window, &waiting_budget, &active, config, now) {
        plan.push(summary);
    }
    plan
}

fn drift_facts(state: &GroupState, target: &AmiParameter, stale: &BTreeMap<&str, &str>) -> String {
    let old: BTreeSet<&str> = stale.values().copied().collect();
    format!(
        "{} of {} in-service instance(s) of group `{}` (cluster `{}`) run {} instead of `{}`, which parameter `{}` (version {}) names.",
        stale.len(),
        state.running.len(),
        state.name(),
        state.cluster,
        old.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
        target.image_id,
        shared::notify::escape(&target.name, 200),
        target.version
    )
}

/// A mixed instances policy whose overrides launch some instance types from other
/// launch templates (often another AMI per architecture): drift judged against the
/// policy's own template would never clear, so such a group is reported, not rolled.
fn unjudgeable_overrides(state: &GroupState) -> Option<String> {
    let LaunchSource::MixedInstances { template } = &state.details.launch else {
        return None;
    };
    let others: BTreeSet<&str> = state
        .details
        .override_templates
        .iter()
        .filter(|o| o.label() != template.label() || o.version != template.version)
        .map(LaunchTemplateRef::label)
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "its mixed instances policy launches some instance types from other launch templates ({}), whose AMIs ami-rollout does not compare yet, so drift cannot be judged per instance",
            others.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Why the group's stale instances cannot run the target image, or why that cannot be
/// told (an image DescribeImages does not know): either way the group is not rolled.
fn image_problem(
    state: &GroupState,
    target: &AmiParameter,
    known: &BTreeMap<String, Image>,
) -> Option<String> {
    let Some(new) = known.get(&target.image_id) else {
        return Some(format!(
            "the parameter's AMI `{}` cannot be described (deregistered, or not shared with this account), so it is not known to fit the group's instances",
            target.image_id
        ));
    };
    let old: BTreeSet<&str> = state.stale(&target.image_id).into_values().collect();
    old.into_iter().find_map(|ami| match known.get(ami) {
        None => Some(format!(
            "the AMI `{ami}` its instances run cannot be described (deregistered, or not shared with this account), so `{}` is not known to fit them",
            target.image_id
        )),
        Some(current) => images::incompatibility(current, new),
    })
}

/// The newest refresh, when it ended Successful after the parameter last changed: the
/// AMI is the one it rolled, so drift still there is something a refresh leaves.
fn succeeded_since(
    refreshes: &[InstanceRefresh],
    parameter_changed: Option<DateTime<Utc>>,
) -> Option<&InstanceRefresh> {
    let newest = refreshes.first()?;
    let after_change = match (newest.start_time, parameter_changed) {
        (Some(started), Some(changed)) => started >= changed,
        _ => false,
    };
    (newest.status == "Successful" && after_change).then_some(newest)
}

/// The stale instances, each with what may have kept a refresh from replacing it.
fn left_over(state: &GroupState, stale: &BTreeMap<&str, &str>, config: &Config) -> String {
    stale
        .iter()
        .take(LIST_MAX)
        .map(|(id, ami)| {
            let why = if state.details.protected.contains(*id) {
                format!(
                    "protected from scale in, and SCALE_IN_PROTECTED_INSTANCES is {}",
                    config.refresh.scale_in_protected_instances
                )
            } else {
                "not protected; it may have been in Standby, or launched from another launch template or version than the refresh compared".to_string()
            };
            format!("`{id}` runs `{ami}` ({why})")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The newest refresh, when it ended badly after the parameter last changed: the AMI
/// it rolled is likely what broke it.
fn failed_since(
    refreshes: &[InstanceRefresh],
    parameter_changed: Option<DateTime<Utc>>,
) -> Option<&InstanceRefresh> {
    let newest = refreshes.first()?;
    let failed = matches!(
        newest.status.as_str(),
        "Failed" | "Cancelled" | "RollbackSuccessful" | "RollbackFailed"
    );
    let after_change = match (newest.start_time, parameter_changed) {
        (Some(started), Some(changed)) => started >= changed,
        _ => false,
    };
    (failed && after_change).then_some(newest)
}

/// How to roll a group whose launch template is known, or why it cannot be rolled.
fn roll_mode(
    state: &GroupState,
    target: &AmiParameter,
    templates: &Templates,
    config: &Config,
) -> Result<(RollMode, RefreshRequest), String> {
    let (template, mixed) = match &state.details.launch {
        LaunchSource::LaunchTemplate { template } => (template, false),
        LaunchSource::MixedInstances { template } => (template, true),
        _ => return Err("the group has no launch template.".into()),
    };
    let Some(current) = &templates.current else {
        return Err(format!(
            "version `{}` of its launch template `{}` could not be read.",
            template.version,
            template.label()
        ));
    };
    // Neither a parameter-resolving template nor $Latest/$Default can be rolled back to.
    let numbered = template.version.parse::<i64>().is_ok();
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
        ImageRef::Parameter { name, selector: None } if *name == state.parameter => {
            plain(RollMode::Current)
        }
        ImageRef::Parameter { name, selector } => Err(format!(
            "its launch template `{}` version {} resolves `{}{}`, not the parameter `{}` the group follows, so a refresh would not bring the AMI it should run.",
            current.template_id,
            current.version,
            name,
            selector.as_deref().map(|s| format!(":{s} (pinned)")).unwrap_or_default(),
            state.parameter
        )),
        ImageRef::Ami { image_id } if *image_id == target.image_id => plain(RollMode::Current),
        ImageRef::Ami { .. } if mixed => Err(format!(
            "it uses a mixed instances policy around launch template `{}` with a literal AMI; ami-rollout does not rewrite mixed instances policies.",
            current.template_id
        )),
        ImageRef::Ami { .. } => {
            let mut settings = config.refresh.clone();
            settings.auto_rollback = config.refresh.auto_rollback && numbered;
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
        ImageRef::Other { value } => Err(format!(
            "its launch template `{}` version {} has ImageId `{}`, neither an AMI id nor `resolve:ssm:NAME`.",
            current.template_id,
            current.version,
            shared::notify::escape(value, 100)
        )),
    }
}

fn roll_step(c: Candidate<'_>) -> Step {
    let facts = drift_facts(c.state, c.target, &c.stale);
    let how = match &c.mode {
        RollMode::Current => "with the group's current launch configuration".to_string(),
        RollMode::NewVersion { template_id, source_version, .. } => format!(
            "to a new version of launch template `{template_id}` (a copy of version {source_version} with ImageId `{}`)",
            c.target.image_id
        ),
        RollMode::ExistingVersion { template } => format!(
            "to launch template `{}` version {}, which already has ImageId `{}`",
            template.label(),
            template.version,
            c.target.image_id
        ),
    };
    let s = &c.request.settings;
    let old: BTreeSet<&str> = c.stale.values().copied().collect();
    let notice = Notice::info(
        format!("Rolling {} to {}", c.state.name(), c.target.image_id),
        format!(
            "{facts} Instance refresh {how}: {}{}, skip matching {}, auto rollback {}{}. instance-drain drains each instance through the group's terminate lifecycle hook before it goes.",
            match (s.min_healthy_percentage, s.max_healthy_percentage) {
                (None, None) => "healthy percentages from the group's instance maintenance policy".to_string(),
                (min, max) => format!(
                    "minimum healthy {}, maximum healthy {}",
                    min.map_or("(group's)".into(), |v| format!("{v}%")),
                    max.map_or("(group's)".into(), |v| format!("{v}%"))
                ),
            },
            if s.checkpoint_percentages.is_empty() {
                String::new()
            } else {
                format!(", checkpoints at {:?}%", s.checkpoint_percentages)
            },
            s.skip_matching,
            s.auto_rollback,
            if s.rollback_alarms.is_empty() {
                String::new()
            } else {
                format!(", alarms {:?}", s.rollback_alarms)
            }
        ),
    )
    .detail("target_ami", &c.target.image_id)
    .detail("parameter", &c.target.name)
    .detail("parameter_version", c.target.version)
    .detail("stale_instances", c.stale.len())
    .detail("instances", c.state.running.len())
    .detail("stale_amis", &old)
    .detail("mode", &c.mode)
    .next_step(format!(
        "To stop it: aws autoscaling cancel-instance-refresh --auto-scaling-group-name {} and tag the group {ROLLOUT_TAG}=paused.",
        c.state.name()
    ));
    Step::Roll {
        group: c.state.name().to_string(),
        cluster: c.state.cluster.clone(),
        mode: c.mode,
        request: Box::new(c.request),
        notice,
    }
}

fn listed(names: &[&str]) -> String {
    let mut text: Vec<String> = names
        .iter()
        .take(LIST_MAX)
        .map(|n| format!("`{n}`"))
        .collect();
    if names.len() > LIST_MAX {
        text.push(format!("and {} more", names.len() - LIST_MAX));
    }
    text.join(", ")
}

/// One notification for every drifted group left for later, rather than one per group
/// per check: on a large fleet, a budget of one leaves hundreds waiting.
fn waiting(
    window: &[&str],
    budget: &[&str],
    active: &BTreeSet<&str>,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<Step> {
    if window.is_empty() && budget.is_empty() {
        return None;
    }
    let mut parts = vec![];
    let mut notice_details: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    if !window.is_empty() {
        let opens = config.window.next_open(now);
        parts.push(format!(
            "{} drifted group(s) wait for the maintenance window ({}), which next opens {}: {}.",
            window.len(),
            config.window,
            opens.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            listed(window)
        ));
        notice_details.insert("waiting_for_window", serde_json::json!(window));
        notice_details.insert("window_opens", serde_json::json!(opens));
    }
    if !budget.is_empty() {
        parts.push(format!(
            "{} drifted group(s) wait for a rollout slot: MAX_CONCURRENT_ROLLOUTS is {} and {} group(s) are refreshing ({}). They are rolled oldest drift first by later checks: {}.",
            budget.len(),
            config.max_concurrent_rollouts,
            active.len(),
            listed(&active.iter().copied().collect::<Vec<_>>()),
            listed(budget)
        ));
        notice_details.insert("waiting_for_budget", serde_json::json!(budget));
        notice_details.insert("refreshing", serde_json::json!(active));
    }
    let mut notice = Notice::info(
        format!(
            "{} drifted group(s) waiting to be rolled",
            window.len() + budget.len()
        ),
        parts.join(" "),
    );
    for (k, v) in notice_details {
        notice = notice.detail(k, v);
    }
    Some(Step::Report {
        action: "rollout",
        outcome: Outcome::Skipped,
        group: None,
        cluster: None,
        notice,
    })
}

/// How an instance refresh of a managed group ended, and what its instances run now;
/// then the group remembers the report. A refresh already reported (a repeated or late
/// event) is `already_done`, not a second report.
pub fn refresh_outcome(
    event: &RefreshEvent,
    state: &GroupState,
    refresh: Option<&InstanceRefresh>,
    target: Option<&AmiParameter>,
) -> Plan {
    if state.details.group.tags.get(REPORTED_TAG) == Some(&event.refresh_id) {
        let notice = Notice::info(
            format!("Instance refresh of {} already reported", state.name()),
            format!(
                "The outcome of instance refresh `{}` of group `{}` was reported when its first outcome event arrived; this repeated event changes nothing.",
                event.refresh_id,
                state.name()
            ),
        )
        .detail("refresh_id", &event.refresh_id)
        .detail("phase", event.phase);
        return vec![report(
            state,
            "refresh-outcome",
            Outcome::AlreadyDone,
            notice,
        )];
    }
    vec![
        outcome_report(event, state, refresh, target),
        Step::MarkReported {
            group: state.name().to_string(),
            refresh_id: event.refresh_id.clone(),
        },
    ]
}

fn outcome_report(
    event: &RefreshEvent,
    state: &GroupState,
    refresh: Option<&InstanceRefresh>,
    target: Option<&AmiParameter>,
) -> Step {
    let mut amis: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unregistered = 0;
    for ami in state.running.values() {
        match ami {
            Some(a) => *amis.entry(a.as_str()).or_default() += 1,
            None => unregistered += 1,
        }
    }
    let (severity, outcome, what) = match event.phase {
        Phase::Succeeded => (Severity::Info, Outcome::Done, "succeeded"),
        Phase::Cancelled => (Severity::Warning, Outcome::Warning, "was cancelled"),
        Phase::RollbackSucceeded => (Severity::Warning, Outcome::Warning, "was rolled back"),
        Phase::RollbackFailed => (Severity::High, Outcome::Warning, "failed to roll back"),
        _ => (Severity::High, Outcome::Warning, "failed"),
    };
    let running = if amis.is_empty() {
        "no registered container instances".to_string()
    } else {
        amis.iter()
            .map(|(a, n)| format!("`{a}` on {n} instance(s)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let target_text = target
        .map(|t| {
            let on_target = amis.get(t.image_id.as_str()).copied().unwrap_or_default();
            format!(
                " Parameter `{}` names `{}`; {} of {} in-service instance(s) run it.",
                shared::notify::escape(&t.name, 200),
                t.image_id,
                on_target,
                state.running.len()
            )
        })
        .unwrap_or_default();
    let reason = refresh
        .and_then(|r| r.status_reason.as_deref())
        .map(|r| format!(" AWS says: {}", shared::notify::escape(r, 400)))
        .unwrap_or_default();
    let mut notice = Notice::new(
        severity,
        format!("Instance refresh of {} {what}", state.name()),
        format!(
            "Instance refresh `{}` of group `{}` (cluster `{}`) {what}.{reason} The group now runs {running}{}.{target_text}",
            event.refresh_id,
            state.name(),
            state.cluster,
            if unregistered > 0 {
                format!(" ({unregistered} in-service instance(s) not yet registered in the cluster)")
            } else {
                String::new()
            }
        ),
    )
    .detail("refresh_id", &event.refresh_id)
    .detail("phase", event.phase)
    .detail("running_amis", &amis)
    .detail("unregistered_instances", unregistered);
    if let Some(r) = refresh {
        notice = notice
            .detail("refresh_status", &r.status)
            .detail("percentage_complete", r.percentage_complete);
    }
    if let Some(t) = target {
        notice = notice.detail("target_ami", &t.image_id);
    }
    if event.phase != Phase::Succeeded {
        notice = notice
            .next_step("Check the refresh in the Auto Scaling console (activity history) and the instance-drain notifications for instances that did not join or drain.")
            .next_step(format!("ami-rollout does not retry the same AMI automatically; tag the group {ROLLOUT_TAG}=paused to keep later AMIs off it too."));
    }
    report(state, "refresh-outcome", outcome, notice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use shared::aws::autoscaling::{Group, GroupInstance};
    use shared::config::Env;
    use shared::window::MaintenanceWindow;

    const OLD: &str = "ami-0000000000000old";
    const NEW: &str = "ami-0000000000000new";
    const PARAM: &str = "/team/ami";
    const OTHER: &str = "ami-0000000000other";

    fn config() -> Config {
        Config::from_env(&Env::from_pairs([
            ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            ("DEFAULT_AMI_PARAMETER", PARAM),
        ]))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        // A Tuesday.
        DateTime::parse_from_rfc3339("2024-01-02T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn template(version: &str) -> LaunchTemplateRef {
        LaunchTemplateRef {
            id: Some("lt-1".into()),
            name: None,
            version: version.into(),
        }
    }

    fn group(name: &str, amis: &[Option<&str>]) -> GroupState {
        let running: BTreeMap<String, Option<String>> = amis
            .iter()
            .enumerate()
            .map(|(n, a)| (format!("i-{name}{n}"), a.map(str::to_string)))
            .collect();
        GroupState {
            details: GroupDetails {
                group: Group {
                    name: name.into(),
                    tags: BTreeMap::from([("ecs-autopilot:cluster".into(), "prod".into())]),
                    instances: running
                        .keys()
                        .map(|i| GroupInstance {
                            instance_id: i.clone(),
                            lifecycle_state: "InService".into(),
                            health_status: "Healthy".into(),
                        })
                        .collect(),
                },
                launch: LaunchSource::LaunchTemplate {
                    template: template("1"),
                },
                desired_capacity: amis.len() as i32,
                protected: BTreeSet::new(),
                override_templates: vec![],
            },
            cluster: "prod".into(),
            cluster_managed: true,
            parameter: PARAM.into(),
            no_parameter: None,
            running,
        }
    }

    fn version(n: i64, image: ImageRef) -> TemplateVersion {
        TemplateVersion {
            template_id: "lt-1".into(),
            template_name: "web".into(),
            version: n,
            is_default: n == 1,
            image,
        }
    }

    fn literal(n: i64, ami: &str) -> TemplateVersion {
        version(
            n,
            ImageRef::Ami {
                image_id: ami.into(),
            },
        )
    }

    fn parameter(ami: &str, changed_minutes_ago: i64) -> AmiParameter {
        AmiParameter {
            name: PARAM.into(),
            image_id: ami.into(),
            version: 2,
            last_modified: Some(now() - Duration::minutes(changed_minutes_ago)),
        }
    }

    fn observed(groups: Vec<GroupState>) -> Observed {
        let templates = groups
            .iter()
            .map(|g| {
                (
                    g.name().to_string(),
                    Templates {
                        current: Some(literal(1, OLD)),
                        latest: Some(literal(1, OLD)),
                    },
                )
            })
            .collect();
        Observed {
            groups,
            parameters: AmiParameters {
                found: BTreeMap::from([(PARAM.into(), parameter(NEW, 60))]),
                unusable: BTreeMap::new(),
            },
            refreshes: BTreeMap::new(),
            templates,
            images: [OLD, NEW, OTHER]
                .into_iter()
                .map(|id| (id.to_string(), al2023(id, "x86_64")))
                .collect(),
            managed_clusters: BTreeSet::from(["prod".to_string()]),
        }
    }

    fn al2023(id: &str, arch: &str) -> Image {
        Image {
            image_id: id.into(),
            architecture: arch.into(),
            platform: String::new(),
            platform_details: "Linux/UNIX".into(),
            virtualization_type: "hvm".into(),
            name: format!("al2023-ami-ecs-hvm-2023.0.{id}-kernel-6.1-{arch}"),
            description: String::new(),
            owner_alias: "amazon".into(),
        }
    }

    fn refresh(group: &str, status: &str, started_minutes_ago: i64) -> InstanceRefresh {
        InstanceRefresh {
            id: format!("r-{group}"),
            group: group.into(),
            status: status.into(),
            status_reason: Some("reason".into()),
            start_time: Some(now() - Duration::minutes(started_minutes_ago)),
            end_time: None,
            percentage_complete: Some(40),
            instances_to_update: Some(2),
            desired_template: None,
        }
    }

    fn outcomes(plan: &Plan) -> Vec<(&'static str, Option<Outcome>)> {
        plan.iter()
            .map(|s| match s {
                Step::Roll { .. } => ("rollout", None),
                Step::Report {
                    action, outcome, ..
                } => (*action, Some(*outcome)),
                Step::MarkReported { .. } => ("mark-reported", None),
            })
            .collect()
    }

    #[test]
    fn a_group_on_its_parameters_ami_is_left_alone_silently() {
        let o = observed(vec![group("web", &[Some(NEW), Some(NEW), None])]);
        assert!(check(&o, &config(), now()).is_empty());
        assert!(rollable(&o, &config(), now()).is_empty());
    }

    #[test]
    fn a_literal_ami_template_gets_a_new_version_and_a_pinned_refresh_with_rollback() {
        let o = observed(vec![group("web", &[Some(OLD), Some(NEW)])]);
        let plan = check(&o, &config(), now());
        let [Step::Roll {
            mode,
            request,
            notice,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            *mode,
            RollMode::NewVersion {
                template_id: "lt-1".into(),
                source_version: 1,
                image_id: NEW.into(),
                pin: true
            }
        );
        assert!(request.settings.skip_matching);
        assert!(request.settings.auto_rollback);
        // Unset by default: AWS applies the group's instance maintenance policy.
        assert_eq!(request.settings.min_healthy_percentage, None);
        assert_eq!(request.settings.max_healthy_percentage, None);
        assert_eq!(notice.details["stale_instances"], 1);
    }

    #[test]
    fn a_version_an_earlier_delivery_created_is_reused() {
        let mut o = observed(vec![group("web", &[Some(OLD)])]);
        o.templates.get_mut("web").unwrap().latest = Some(literal(2, NEW));
        let plan = check(&o, &config(), now());
        let [Step::Roll { mode, request, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            *mode,
            RollMode::ExistingVersion {
                template: template("2")
            }
        );
        assert_eq!(request.desired_template, Some(template("2")));
    }

    #[test]
    fn a_resolve_ssm_template_is_refreshed_as_is_without_skip_matching_or_rollback() {
        let mut o = observed(vec![group("web", &[Some(OLD)])]);
        o.templates.get_mut("web").unwrap().current = Some(version(
            1,
            ImageRef::Parameter {
                name: PARAM.into(),
                selector: None,
            },
        ));
        let plan = check(&o, &config(), now());
        let [Step::Roll { mode, request, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(*mode, RollMode::Current);
        assert_eq!(request.desired_template, None);
        assert!(!request.settings.skip_matching);
        assert!(!request.settings.auto_rollback);
    }

    #[test]
    fn a_template_resolving_another_parameter_is_reported_not_rolled() {
        let mut o = observed(vec![group("web", &[Some(OLD)])]);
        o.templates.get_mut("web").unwrap().current = Some(version(
            1,
            ImageRef::Parameter {
                name: "/other".into(),
                selector: None,
            },
        ));
        let plan = check(&o, &config(), now());
        assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
    }

    #[test]
    fn groups_on_latest_are_refreshed_to_latest_without_rollback() {
        let mut g = group("web", &[Some(OLD)]);
        g.details.launch = LaunchSource::LaunchTemplate {
            template: template("$Latest"),
        };
        let plan = check(&observed(vec![g]), &config(), now());
        let [Step::Roll { mode, request, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert!(matches!(mode, RollMode::NewVersion { pin: false, .. }));
        assert!(!request.settings.auto_rollback);
    }

    #[test]
    fn launch_configurations_and_mixed_literal_templates_are_reported_as_unsupported() {
        let mut lc = group("old", &[Some(OLD)]);
        lc.details.launch = LaunchSource::LaunchConfiguration { name: "lc".into() };
        let mut mixed = group("mix", &[Some(OLD)]);
        mixed.details.launch = LaunchSource::MixedInstances {
            template: template("1"),
        };
        let plan = check(&observed(vec![lc, mixed]), &config(), now());
        assert_eq!(
            outcomes(&plan),
            [
                ("rollout", Some(Outcome::Skipped)),
                ("rollout", Some(Outcome::Skipped))
            ]
        );
        let Step::Report { notice, .. } = &plan[0] else {
            panic!()
        };
        assert!(notice.description.contains("launch configuration"));
    }

    #[test]
    fn a_paused_group_is_reported_and_never_read_further() {
        let mut g = group("web", &[Some(OLD)]);
        g.details
            .group
            .tags
            .insert(ROLLOUT_TAG.into(), "Paused".into());
        let o = observed(vec![g]);
        assert!(rollable(&o, &config(), now()).is_empty());
        let plan = check(&o, &config(), now());
        assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
    }

    #[test]
    fn outside_the_window_drift_is_summarised_with_the_next_opening() {
        let mut c = config();
        c.window = MaintenanceWindow::parse("Sat,Sun 00:00-24:00").unwrap();
        let o = observed(vec![group("a", &[Some(OLD)]), group("b", &[Some(OLD)])]);
        assert!(rollable(&o, &c, now()).is_empty());
        let plan = check(&o, &c, now());
        let [Step::Report {
            outcome: Outcome::Skipped,
            group: None,
            notice,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            notice.details["waiting_for_window"],
            serde_json::json!(["a", "b"])
        );
        assert_eq!(notice.details["window_opens"], "2024-01-06T00:00:00Z");
    }

    #[test]
    fn the_budget_counts_refreshes_fleet_wide_and_rolls_the_oldest_drift_first() {
        let mut c = config();
        c.max_concurrent_rollouts = 2;
        let mut o = observed(vec![
            group("young", &[Some(OLD)]),
            group("old", &[Some(OTHER)]),
            group("third", &[Some(OLD)]),
        ]);
        o.groups[1].parameter = "/other/ami".into();
        o.parameters.found.insert(
            "/other/ami".into(),
            AmiParameter {
                name: "/other/ami".into(),
                ..parameter(NEW, 600)
            },
        );
        // A group outside this check is refreshing: one of the two slots is taken.
        o.refreshes.insert(
            "elsewhere".into(),
            vec![refresh("elsewhere", "InProgress", 5)],
        );
        let plan = check(&o, &c, now());
        let rolled: Vec<&str> = plan
            .iter()
            .filter_map(|s| match s {
                Step::Roll { group, .. } => Some(group.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(rolled, ["old"]);
        let Some(Step::Report { notice, .. }) = plan.last() else {
            panic!()
        };
        assert_eq!(
            notice.details["waiting_for_budget"],
            serde_json::json!(["third", "young"])
        );
    }

    #[test]
    fn templates_are_read_in_drift_order_and_unread_groups_wait_for_the_budget() {
        let mut o = observed(vec![group("b", &[Some(OLD)]), group("a", &[Some(OLD)])]);
        let (order, slots) = roll_order(&o, &config(), now());
        let names: Vec<&str> = order.iter().map(|g| g.name()).collect();
        assert_eq!((names, slots), (vec!["a", "b"], 1));
        assert!(can_roll(&o, "a", &config()));
        o.templates.remove("b");
        let plan = check(&o, &config(), now());
        assert_eq!(
            outcomes(&plan),
            [("rollout", None), ("rollout", Some(Outcome::Skipped))]
        );
        let Some(Step::Report { notice, .. }) = plan.last() else {
            panic!()
        };
        assert_eq!(
            notice.details["waiting_for_budget"],
            serde_json::json!(["b"])
        );
    }

    #[test]
    fn a_refresh_in_progress_is_already_done_and_holds_its_slot() {
        let mut o = observed(vec![group("a", &[Some(OLD)]), group("b", &[Some(OLD)])]);
        o.refreshes
            .insert("a".into(), vec![refresh("a", "InProgress", 5)]);
        let plan = check(&o, &config(), now());
        assert_eq!(
            outcomes(&plan),
            [
                ("rollout", Some(Outcome::AlreadyDone)),
                ("rollout", Some(Outcome::Skipped))
            ]
        );
    }

    #[test]
    fn a_refresh_that_failed_after_the_parameter_changed_is_not_retried() {
        let mut o = observed(vec![group("a", &[Some(OLD)])]);
        o.refreshes
            .insert("a".into(), vec![refresh("a", "RollbackSuccessful", 30)]);
        assert_eq!(
            outcomes(&check(&o, &config(), now())),
            [("rollout", Some(Outcome::Skipped))]
        );
        // A failure before the parameter named this AMI says nothing about it.
        o.refreshes
            .insert("a".into(), vec![refresh("a", "Failed", 120)]);
        assert_eq!(outcomes(&check(&o, &config(), now())), [("rollout", None)]);
    }

    #[test]
    fn unusable_parameters_and_unmanaged_clusters_are_reported() {
        let mut lost = group("lost", &[Some(OLD)]);
        lost.parameter = "/missing".into();
        let mut foreign = group("foreign", &[Some(OLD)]);
        foreign.cluster_managed = false;
        let mut o = observed(vec![lost, foreign]);
        o.parameters
            .unusable
            .insert("/missing".into(), "parameter not found".into());
        let plan = check(&o, &config(), now());
        assert_eq!(
            outcomes(&plan),
            [
                ("check", Some(Outcome::Skipped)),
                ("check", Some(Outcome::Skipped))
            ]
        );
    }

    #[test]
    fn instances_not_registered_in_the_cluster_are_not_drift() {
        let o = observed(vec![group("web", &[None, Some(NEW)])]);
        assert!(check(&o, &config(), now()).is_empty());
    }

    #[test]
    fn the_parameter_tag_overrides_the_default() {
        let mut g = group("web", &[]);
        assert_eq!(parameter_of(&g.details, &config()), PARAM);
        g.details
            .group
            .tags
            .insert(PARAMETER_TAG.into(), " /mine ".into());
        assert_eq!(parameter_of(&g.details, &config()), "/mine");
    }

    #[test]
    fn refresh_outcomes_say_what_the_group_runs_now() {
        let g = group("web", &[Some(NEW), Some(NEW), Some(OLD), None]);
        let event = RefreshEvent {
            phase: Phase::Succeeded,
            group: "web".into(),
            refresh_id: "r-1".into(),
        };
        let target = parameter(NEW, 60);
        let plan = refresh_outcome(&event, &g, None, Some(&target));
        let [Step::Report {
            outcome, notice, ..
        }, Step::MarkReported { group, refresh_id }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!((group.as_str(), refresh_id.as_str()), ("web", "r-1"));
        assert_eq!(*outcome, Outcome::Done);
        assert_eq!(notice.details["running_amis"][NEW], 2);
        assert_eq!(notice.details["unregistered_instances"], 1);
        assert!(notice.description.contains("2 of 4"));
        let failed = RefreshEvent {
            phase: Phase::RollbackSucceeded,
            ..event
        };
        let Step::Report {
            outcome, notice, ..
        } = refresh_outcome(
            &failed,
            &g,
            Some(&refresh("web", "RollbackSuccessful", 1)),
            None,
        )
        .remove(0)
        else {
            panic!()
        };
        assert_eq!(outcome, Outcome::Warning);
        assert!(notice.severity >= Severity::Warning);
        assert!(notice.description.contains("reason"));
    }

    #[test]
    fn a_refresh_already_reported_is_already_done_and_not_reported_again() {
        let mut g = group("web", &[Some(NEW)]);
        g.details
            .group
            .tags
            .insert(REPORTED_TAG.into(), "r-1".into());
        let event = RefreshEvent {
            phase: Phase::Failed,
            group: "web".into(),
            refresh_id: "r-1".into(),
        };
        let plan = refresh_outcome(&event, &g, None, None);
        assert_eq!(
            outcomes(&plan),
            [("refresh-outcome", Some(Outcome::AlreadyDone))]
        );
        // Another refresh of the same group is a new outcome.
        let next = RefreshEvent {
            refresh_id: "r-2".into(),
            ..event
        };
        let plan = refresh_outcome(&next, &g, None, None);
        assert_eq!(
            outcomes(&plan),
            [
                ("refresh-outcome", Some(Outcome::Warning)),
                ("mark-reported", None)
            ]
        );
    }
}
