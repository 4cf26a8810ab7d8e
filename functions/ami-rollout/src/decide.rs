//! The pure core: from the managed groups, the AMIs their parameters name, the AMIs their
//! instances run, their refreshes and launch templates, decide which groups to roll and
//! what to tell people. No AWS calls here; the plan is data, so it is logged, dry-run
//! and asserted in tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::{
    GroupDetails, InstanceRefresh, LaunchSource, LaunchTemplateRef, RefreshRequest, RefreshStatus,
};
use shared::aws::ec2::{Image, ImageRef, TemplateVersion};
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
/// The instance refresh ami-rollout started last on the group: `starting:<time>` just
/// before the start (nothing is changed if that write fails, and a refresh that started
/// but could not be tagged is still known as its own), `<id>` right after, `halted:<id>`
/// once the window guard cancelled it at the window's close (the next window resumes it).
pub const REFRESH_TAG: &str = "ecs-autopilot:rollout-refresh";
const HALTED: &str = "halted:";
const STARTING: &str = "starting:";

/// What the group's `REFRESH_TAG` says about ami-rollout's own refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnRefresh<'a> {
    /// About to start at that time (the id was not written yet).
    Starting(DateTime<Utc>),
    Started(&'a str),
    Halted(&'a str),
}

pub fn own_refresh(details: &GroupDetails) -> Option<OwnRefresh<'_>> {
    let value = tag(details, REFRESH_TAG)?;
    if let Some(at) = value.strip_prefix(STARTING) {
        return DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|t| OwnRefresh::Starting(t.with_timezone(&Utc)));
    }
    Some(match value.strip_prefix(HALTED) {
        Some(id) => OwnRefresh::Halted(id),
        None => OwnRefresh::Started(value),
    })
}

/// The `REFRESH_TAG` value written just before a start.
pub fn starting_value(now: DateTime<Utc>) -> String {
    format!(
        "{STARTING}{}",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Whether `refresh` is the one ami-rollout started on the group: the id it wrote, or —
/// the id not written — a refresh that started after the function was about to start
/// one (a minute's clock skew allowed).
pub fn is_own(details: &GroupDetails, refresh: &InstanceRefresh) -> bool {
    match own_refresh(details) {
        Some(OwnRefresh::Started(id)) => refresh.id == id,
        Some(OwnRefresh::Starting(at)) => refresh
            .start_time
            .is_some_and(|t| t >= at - chrono::Duration::minutes(1)),
        _ => false,
    }
}

/// The `REFRESH_TAG` value of a refresh the window guard halted.
pub fn halted_value(refresh_id: &str) -> String {
    format!("{HALTED}{refresh_id}")
}

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
    /// Why no parameter could be chosen (a sentence about the group): the group is
    /// reported, never rolled.
    pub no_parameter: Option<String>,
    /// Mixed instances groups whose overrides launch from other templates: each launch
    /// template the group launches from, with the parameter it follows. Empty otherwise.
    pub lanes: Vec<Lane>,
    /// Instance → the AMI its lane's parameter names (lane groups only; any other
    /// instance is compared with the group's parameter).
    pub expected: BTreeMap<String, String>,
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

    /// In-service instances running another AMI than `target` (or, in a lane group,
    /// than their lane's parameter names), with that AMI.
    pub fn stale(&self, target: &str) -> BTreeMap<&str, &str> {
        self.running
            .iter()
            .filter_map(|(i, ami)| Some((i.as_str(), ami.as_deref()?)))
            .filter(|(i, ami)| *ami != self.expected_ami(i, target))
            .collect()
    }

    /// The AMI an instance should run: its lane's, else `target`.
    pub fn expected_ami<'a>(&'a self, instance: &str, target: &'a str) -> &'a str {
        self.expected.get(instance).map_or(target, String::as_str)
    }
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
        /// The group's `REFRESH_TAG` before this step marks it: put back if no refresh
        /// of ours starts (a halted one stays resumable, nobody else's looks like ours).
        previous_mark: Option<String>,
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
    /// Cancel ami-rollout's own refresh because the window is about to close, then mark
    /// it halted (`REFRESH_TAG` = `halted:<id>`) so the next window resumes it.
    Halt {
        group: String,
        cluster: String,
        refresh_id: String,
        notice: Notice,
    },
}

impl Step {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Roll { .. } => "rollout",
            Step::Report { action, .. } => action,
            Step::MarkReported { .. } => "mark-reported",
            Step::Halt { .. } => "window-halt",
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
    if !config.may_replace(now) {
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
            )
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
            let halted = halted_since(g, refreshes, target.last_modified);
            !refreshes.iter().any(InstanceRefresh::is_active)
                && halted.is_none_or(|h| resumable(g, h).is_ok())
                && (halted.is_some() || failed_since(refreshes, target.last_modified).is_none())
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
    let refreshes = observed
        .refreshes
        .get(group)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let halted = halted_since(state, refreshes, target.last_modified);
    roll_mode(state, target, &templates, config, halted).is_ok()
}

/// A drifted group that may be rolled, waiting for a slot in the budget.
struct Candidate<'a> {
    state: &'a GroupState,
    target: &'a AmiParameter,
    /// The halted refresh this one resumes.
    resumed: Option<&'a InstanceRefresh>,
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
                        "Group `{}`: {why}. Its AMI is reported, never rolled, until it names its parameter.",
                        state.name()
                    ),
                )
                .next_step(format!("Tag the group {PARAMETER_TAG} (or {PARAMETER_TAG}:arm64 / {PARAMETER_TAG}:x86_64) with the SSM parameter of the image it should run; in a mixed instances group, tag each architecture or use resolve:ssm: in each override's launch template.")),
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
            _ => None,
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
        if !config.may_replace(now) {
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
        let halted = halted_since(state, refreshes, target.last_modified);
        if let Some((h, why)) = halted.and_then(|h| Some((h, resumable(state, h).err()?))) {
            plan.push(report(
                state,
                "rollout",
                Outcome::Warning,
                Notice::warning(
                    format!("Not resuming {}: halted refresh can't skip what it replaced", state.name()),
                    format!(
                        "{facts} ami-rollout halted instance refresh `{}` when the maintenance window closed; it is not resumed automatically: {why}.",
                        h.id
                    ),
                )
                .detail("refresh_id", &h.id)
                .detail("target_ami", &target.image_id)
                .next_step("Start an instance refresh yourself inside the window, or publish the next AMI (a new target starts a new rollout)."),
            ));
            continue;
        }
        if let Some(failed) =
            failed_since(refreshes, target.last_modified).filter(|_| halted.is_none())
        {
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
        match roll_mode(state, target, templates, config, halted) {
            Ok((mode, request)) => candidates.push(Candidate {
                state,
                target,
                resumed: halted,
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
    if !state.lanes.is_empty() {
        // A lane group: each lane against its own template's parameter.
        let lanes: Vec<String> = state
            .lanes
            .iter()
            .filter_map(|l| {
                let expected = state.expected.get(l.instances.first()?)?;
                let n = l.instances.iter().filter(|i| stale.contains_key(i.as_str())).count();
                Some(format!(
                    "{n} of the {} instance(s) launched from template `{}` run another AMI than `{expected}`, which parameter `{}` names",
                    l.instances.len(),
                    l.template.label(),
                    shared::notify::escape(&l.parameter, 200)
                ))
            })
            .collect();
        return format!(
            "{} of {} in-service instance(s) of mixed instances group `{}` (cluster `{}`) run an older AMI ({}): {}.",
            stale.len(),
            state.running.len(),
            state.name(),
            state.cluster,
            old.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
            lanes.join("; ")
        );
    }
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
) -> Result<Vec<Lane>, String> {
    let templates = lane_templates(details);
    let Some(policy) = templates.first() else {
        return Err("it has no mixed instances policy".into());
    };
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for instance in running.keys() {
        let Some(kind) = details.instance_types.get(instance) else {
            return Err(format!(
                "the instance type of `{instance}` is unknown, so which launch template it came from can't be told"
            ));
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
                return Err(format!(
                    "`{instance}` ({kind}) matches no override by instance type, and an override by instance requirements has its own launch template, so which template it came from can't be told"
                ))
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
            return Err(format!(
                "version `{}` of its override launch template `{}` could not be read",
                template.version,
                template.label()
            ));
        };
        let instances = members.remove(&key).unwrap_or_default();
        let parameter = match &version.image {
            ImageRef::Parameter { name, selector: None } => name.clone(),
            ImageRef::Parameter { name, selector: Some(pin) } => {
                return Err(format!(
                    "launch template `{}` version {} resolves `{name}:{pin}`, pinned to one version of the parameter, so no newer AMI is ever launched from it",
                    version.template_id, version.version
                ))
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
                        return Err(format!(
                            "launch template `{}` version {} names the literal AMI `{image_id}`, whose architecture can't be told (it cannot be described)",
                            version.template_id, version.version
                        ))
                    }
                };
                match tag(details, &format!("{PARAMETER_TAG}:{arch}")) {
                    Some(p) => p.to_string(),
                    None => {
                        return Err(format!(
                            "launch template `{}` version {} names the literal AMI `{image_id}` ({arch}) and the group has no `{PARAMETER_TAG}:{arch}` tag, so which parameter its {} instance(s) follow can't be told",
                            version.template_id,
                            version.version,
                            instances.len()
                        ))
                    }
                }
            }
            ImageRef::Other { value } => {
                return Err(format!(
                    "launch template `{}` version {} has ImageId `{}`, neither an AMI id nor `resolve:ssm:NAME`",
                    version.template_id,
                    version.version,
                    shared::notify::escape(value, 100)
                ))
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

/// Once the parameters are read: each lane instance's expected AMI, or — a lane whose
/// parameter is unusable — why the group can't be judged.
pub fn expect_lanes(state: &mut GroupState, parameters: &AmiParameters) {
    let mut expected = BTreeMap::new();
    for lane in &state.lanes {
        let Some(p) = parameters.found.get(&lane.parameter) else {
            let why = parameters
                .unusable
                .get(&lane.parameter)
                .cloned()
                .unwrap_or_else(|| "parameter not read".into());
            state.no_parameter = Some(format!(
                "the instances of its launch template `{}` follow parameter `{}`, which is unusable ({})",
                lane.template.label(),
                shared::notify::escape(&lane.parameter, 200),
                shared::notify::escape(&why, 300)
            ));
            state.parameter = String::new();
            return;
        };
        for i in &lane.instances {
            expected.insert(i.clone(), p.image_id.clone());
        }
    }
    state.expected = expected;
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
    let pairs: BTreeSet<(&str, &str)> = state
        .stale(&target.image_id)
        .into_iter()
        .map(|(i, ami)| (ami, state.expected_ami(i, &target.image_id)))
        .collect();
    pairs.into_iter().find_map(|(ami, expected)| {
        let new = if expected == target.image_id {
            new
        } else {
            match known.get(expected) {
                Some(image) => image,
                None => {
                    return Some(format!(
                        "the AMI `{expected}` a lane's parameter names cannot be described, so it is not known to fit the instances"
                    ))
                }
            }
        };
        match known.get(ami) {
            None => Some(format!(
                "the AMI `{ami}` its instances run cannot be described (deregistered, or not shared with this account), so `{}` is not known to fit them",
                new.image_id
            )),
            Some(current) => images::incompatibility(current, new),
        }
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
    (newest.status == RefreshStatus::Successful && after_change).then_some(newest)
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

/// The newest refresh, when the window guard halted it (Cancelled, tagged
/// `halted:<id>`) and the parameter has not changed since it started: the next window
/// resumes it rather than treating the cancel as a failure.
fn halted_since<'a>(
    state: &GroupState,
    refreshes: &'a [InstanceRefresh],
    parameter_changed: Option<DateTime<Utc>>,
) -> Option<&'a InstanceRefresh> {
    let newest = refreshes.first()?;
    let after_change = match (newest.start_time, parameter_changed) {
        (Some(started), Some(changed)) => started >= changed,
        _ => false,
    };
    (newest.status == RefreshStatus::Cancelled
        && after_change
        && own_refresh(&state.details) == Some(OwnRefresh::Halted(&newest.id)))
    .then_some(newest)
}

/// Whether a halted refresh can be resumed without replacing what it already
/// replaced: only a refresh to a launch template version (the new instances carry that
/// version, so skip matching leaves them). A mixed instances group is refreshed with
/// its own configuration, where AWS has nothing to tell the new instances by.
fn resumable(state: &GroupState, halted: &InstanceRefresh) -> Result<(), String> {
    if matches!(state.details.launch, LaunchSource::MixedInstances { .. }) {
        return Err("it is a mixed instances group, refreshed with its own configuration, and AWS's skip matching compares launch template versions, not AMIs, so a new refresh would replace the instances the halted one already replaced".into());
    }
    if halted.desired_template.is_none() {
        return Err("the halted refresh had no desired launch template version, so skip matching has nothing to tell the instances it replaced by".into());
    }
    Ok(())
}

/// The newest refresh, when it ended badly after the parameter last changed: the AMI
/// it rolled is likely what broke it.
fn failed_since(
    refreshes: &[InstanceRefresh],
    parameter_changed: Option<DateTime<Utc>>,
) -> Option<&InstanceRefresh> {
    let newest = refreshes.first()?;
    let failed = matches!(
        newest.status,
        RefreshStatus::Failed
            | RefreshStatus::Cancelled
            | RefreshStatus::RollbackSuccessful
            | RefreshStatus::RollbackFailed
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
    resume: Option<&InstanceRefresh>,
) -> Result<(RollMode, RefreshRequest), String> {
    if !state.lanes.is_empty() {
        let literal: Vec<String> = state
            .lanes
            .iter()
            .filter(|l| !matches!(l.image, ImageRef::Parameter { selector: None, .. }))
            .map(|l| format!("`{}`", l.template.label()))
            .collect();
        if !literal.is_empty() {
            return Err(format!(
                "its mixed instances policy launches from launch templates with a literal AMI ({}); ami-rollout does not rewrite mixed instances policies, so the drift is reported, not rolled. Use resolve:ssm: in each of the group's launch templates.",
                literal.join(", ")
            ));
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
        ImageRef::Parameter { name, selector: None }
            if *name == state.parameter && !mixed && !config.window.is_always() =>
        {
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
    // What the stale instances are rolled to (a lane group: each lane's AMI).
    let to: BTreeSet<&str> = c
        .stale
        .keys()
        .map(|i| c.state.expected_ami(i, &c.target.image_id))
        .collect();
    let to = to.into_iter().collect::<Vec<_>>().join(", ");
    let (title, resumed) = match c.resumed {
        Some(h) => (
            format!("Resuming the rollout of {} to {to}", c.state.name()),
            format!(
                " It resumes instance refresh `{}`, which ami-rollout halted when the maintenance window closed: the instances it already replaced run that launch template version and are skipped.",
                h.id
            ),
        ),
        None => (format!("Rolling {} to {to}", c.state.name()), String::new()),
    };
    let notice = Notice::info(
        title,
        format!(
            "{facts}{resumed} Instance refresh {how}: {}{}, skip matching {}, auto rollback {}{}. instance-drain drains each instance through the group's terminate lifecycle hook before it goes.",
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
    .detail("resumed_refresh_id", c.resumed.map(|h| h.id.as_str()))
    .detail("lanes", &c.state.lanes)
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
        previous_mark: tag(&c.state.details, REFRESH_TAG).map(str::to_string),
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
        let opens = config.next_rollout_start(now).unwrap_or(now);
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

/// What the window guard looks at next, from the groups carrying `REFRESH_TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardLook {
    /// The window is about to close (or closed): read these refreshes (group, id; no id:
    /// the group's newest), ami-rollout's own whose end was not reported yet, and halt
    /// the running ones.
    Halt(Vec<(String, Option<String>)>),
    /// The window allows rollouts: check these halted groups, to resume them.
    Resume(BTreeSet<String>),
}

pub fn guard_look(groups: &[GroupDetails], config: &Config, now: DateTime<Utc>) -> GuardLook {
    let ours = groups.iter().filter(|g| g.group.cluster().is_some());
    if config.may_replace(now) {
        return GuardLook::Resume(
            ours.filter(|g| matches!(own_refresh(g), Some(OwnRefresh::Halted(_))) && !is_paused(g))
                .map(|g| g.group.name.clone())
                .collect(),
        );
    }
    GuardLook::Halt(
        ours.filter_map(|g| match own_refresh(g) {
            Some(OwnRefresh::Started(id)) if tag(g, REPORTED_TAG) != Some(id) => {
                Some((g.group.name.clone(), Some(id.to_string())))
            }
            Some(OwnRefresh::Starting(_)) => Some((g.group.name.clone(), None)),
            _ => None,
        })
        .collect(),
    )
}

/// Halt ami-rollout's own refresh of `group` if it may still start replacements
/// (Pending or InProgress; a Baking one replaces nothing more, a rollback is AWS's).
pub fn halt_plan(
    group: &GroupDetails,
    refresh: &InstanceRefresh,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<Step> {
    if !matches!(
        refresh.status,
        RefreshStatus::Pending | RefreshStatus::InProgress
    ) || !is_own(group, refresh)
    {
        return None;
    }
    let name = &group.group.name;
    let closes = config.window.closes_at(now);
    let resumes = config.next_rollout_start(now);
    let at = |t: Option<DateTime<Utc>>| {
        t.map_or("now".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    let notice = Notice::info(
        format!("Halting the refresh of {name}: the maintenance window closes"),
        format!(
            "Instance refresh `{}` of group `{name}` is {} ({}% done, {} instance(s) still to replace). The maintenance window ({}) closes at {}, and WINDOW_END_MARGIN_SECONDS ({} s) leaves no time for another replacement and its drain, so ami-rollout cancels the refresh: a replacement in flight finishes, no new one starts. The next window ({}) resumes it, skipping the instances already on the target.",
            refresh.id,
            refresh.status,
            refresh.percentage_complete.unwrap_or_default(),
            refresh
                .instances_to_update
                .map_or("an unknown number of".to_string(), |n| n.to_string()),
            config.window,
            at(closes),
            config.window_end_margin.num_seconds(),
            at(resumes)
        ),
    )
    .detail("refresh_id", &refresh.id)
    .detail("window_closes", closes)
    .detail("resumes_at", resumes)
    .detail("percentage_complete", refresh.percentage_complete)
    .detail("instances_to_update", refresh.instances_to_update);
    Some(Step::Halt {
        group: name.clone(),
        cluster: group.group.cluster().unwrap_or_default().to_string(),
        refresh_id: refresh.id.clone(),
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
    resumes_at: Option<DateTime<Utc>>,
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
    let halted = event.phase == Phase::Cancelled
        && own_refresh(&state.details) == Some(OwnRefresh::Halted(&event.refresh_id));
    let mut outcome = outcome_report(event, state, refresh, target);
    if halted {
        if let Step::Report {
            outcome: o, notice, ..
        } = &mut outcome
        {
            *o = Outcome::Done;
            notice.severity = Severity::Info;
            notice.title = format!(
                "Instance refresh of {} halted for the maintenance window",
                state.name()
            );
            notice.description = format!(
                "{} ami-rollout cancelled it because the maintenance window was about to close; the instances it replaced keep the new AMI. It is resumed when the window next allows ({}), skipping the instances already on the target.",
                notice.description,
                resumes_at.map_or("no opening found".into(), |t| t
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            );
            notice.next_steps.clear();
            notice
                .details
                .insert("resumes_at".into(), serde_json::json!(resumes_at));
        }
    }
    vec![
        outcome,
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
                overrides: vec![],
                instance_types: BTreeMap::new(),
            },
            cluster: "prod".into(),
            cluster_managed: true,
            parameter: PARAM.into(),
            no_parameter: None,
            lanes: vec![],
            expected: BTreeMap::new(),
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
                Step::Halt { .. } => ("window-halt", None),
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
                target_ami: NEW.into(),
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
        let plan = refresh_outcome(&event, &g, None, Some(&target), None);
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
        let plan = refresh_outcome(&event, &g, None, None, None);
        assert_eq!(
            outcomes(&plan),
            [("refresh-outcome", Some(Outcome::AlreadyDone))]
        );
        // Another refresh of the same group is a new outcome.
        let next = RefreshEvent {
            refresh_id: "r-2".into(),
            ..event
        };
        let plan = refresh_outcome(&next, &g, None, None, None);
        assert_eq!(
            outcomes(&plan),
            [
                ("refresh-outcome", Some(Outcome::Warning)),
                ("mark-reported", None)
            ]
        );
    }

    fn bounded(window: &str) -> Config {
        let mut c = config();
        c.window = MaintenanceWindow::parse(window).unwrap();
        c.window_end_margin = Duration::minutes(30);
        c
    }

    fn halted(g: &mut GroupState, id: &str) {
        g.details
            .group
            .tags
            .insert(REFRESH_TAG.into(), halted_value(id));
    }

    #[test]
    fn no_refresh_starts_when_the_window_closes_within_the_margin() {
        // now() is Tuesday 03:00: a window to 03:20 leaves less than the 30 min margin.
        let o = observed(vec![group("web", &[Some(OLD)])]);
        let c = bounded("Tue 02:00-03:20");
        assert!(rollable(&o, &c, now()).is_empty());
        let plan = check(&o, &c, now());
        let [Step::Report { notice, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            notice.details["waiting_for_window"],
            serde_json::json!(["web"])
        );
        // The next opening that allows a rollout: next Tuesday 02:00.
        assert_eq!(notice.details["window_opens"], "2024-01-09T02:00:00Z");
        assert_eq!(
            outcomes(&check(&o, &bounded("Tue 02:00-04:00"), now())),
            [("rollout", None)]
        );
    }

    #[test]
    fn in_a_bounded_window_a_resolve_template_is_refreshed_to_a_copy_that_skip_matching_can_tell_apart(
    ) {
        let mut o = observed(vec![group("web", &[Some(OLD)])]);
        o.templates.get_mut("web").unwrap().current = Some(version(
            1,
            ImageRef::Parameter {
                name: PARAM.into(),
                selector: None,
            },
        ));
        let plan = check(&o, &bounded("Tue 02:00-06:00"), now());
        let [Step::Roll { mode, request, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            *mode,
            RollMode::NewVersion {
                template_id: "lt-1".into(),
                source_version: 1,
                image_id: format!("resolve:ssm:{PARAM}"),
                target_ami: NEW.into(),
                pin: true
            }
        );
        assert!(request.settings.skip_matching);
        assert!(!request.settings.auto_rollback);
    }

    #[test]
    fn a_refresh_halted_for_the_window_is_resumed_to_the_same_version_with_skip_matching() {
        let mut g = group("web", &[Some(NEW), Some(OLD)]);
        halted(&mut g, "r-web");
        let mut o = observed(vec![g]);
        let mut h = refresh("web", "Cancelled", 30);
        h.desired_template = Some(template("2"));
        o.refreshes.insert("web".into(), vec![h]);
        let mut c = config();
        c.refresh.skip_matching = false; // the operator's choice; a resume skips anyway
        let plan = check(&o, &c, now());
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
            RollMode::ExistingVersion {
                template: template("2")
            }
        );
        assert!(request.settings.skip_matching);
        assert_eq!(request.desired_template, Some(template("2")));
        assert_eq!(notice.details["resumed_refresh_id"], "r-web");
        assert!(notice.title.starts_with("Resuming"));
        // A cancel nobody marked as a halt is a failure: not retried.
        o.groups[0].details.group.tags.remove(REFRESH_TAG);
        assert_eq!(
            outcomes(&check(&o, &c, now())),
            [("rollout", Some(Outcome::Skipped))]
        );
    }

    #[test]
    fn a_halted_refresh_without_a_desired_version_is_reported_not_resumed() {
        let mut g = group("web", &[Some(NEW), Some(OLD)]);
        halted(&mut g, "r-web");
        let mut o = observed(vec![g]);
        o.refreshes
            .insert("web".into(), vec![refresh("web", "Cancelled", 30)]);
        let plan = check(&o, &config(), now());
        assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Warning))]);
        assert!(roll_order(&o, &config(), now()).0.is_empty());
    }

    #[test]
    fn the_guard_halts_only_its_own_unreported_refreshes_near_the_close_and_resumes_halted_ones_after(
    ) {
        let mut mine = group("mine", &[Some(OLD)]).details;
        mine.group.tags.insert(REFRESH_TAG.into(), "r-1".into());
        let mut ended = group("ended", &[Some(OLD)]).details;
        ended.group.tags.insert(REFRESH_TAG.into(), "r-2".into());
        ended.group.tags.insert(REPORTED_TAG.into(), "r-2".into());
        let mut waiting = group("waiting", &[Some(OLD)]).details;
        waiting
            .group
            .tags
            .insert(REFRESH_TAG.into(), halted_value("r-3"));
        let groups = vec![mine.clone(), ended, waiting];
        let closing = bounded("Tue 02:00-03:20");
        assert_eq!(
            guard_look(&groups, &closing, now()),
            GuardLook::Halt(vec![("mine".into(), Some("r-1".into()))])
        );
        assert_eq!(
            guard_look(&groups, &bounded("Tue 02:00-06:00"), now()),
            GuardLook::Resume(BTreeSet::from(["waiting".to_string()]))
        );
        mine.group.tags.insert(REFRESH_TAG.into(), "r-mine".into());
        let Some(Step::Halt {
            refresh_id, notice, ..
        }) = halt_plan(&mine, &refresh("mine", "InProgress", 20), &closing, now())
        else {
            panic!()
        };
        assert_eq!(refresh_id, "r-mine");
        // Someone else's refresh is never halted.
        assert!(halt_plan(&mine, &refresh("other", "InProgress", 20), &closing, now()).is_none());
        // Tagged "starting" only (the id write failed): a refresh started since is its own.
        mine.group.tags.insert(
            REFRESH_TAG.into(),
            starting_value(now() - Duration::minutes(30)),
        );
        assert!(halt_plan(&mine, &refresh("mine", "InProgress", 20), &closing, now()).is_some());
        assert!(halt_plan(&mine, &refresh("mine", "InProgress", 90), &closing, now()).is_none());
        assert_eq!(notice.details["window_closes"], "2024-01-02T03:20:00Z");
        assert_eq!(notice.details["resumes_at"], "2024-01-09T02:00:00Z");
        // Baking replaces nothing more; a rollback is AWS's own.
        assert!(halt_plan(&mine, &refresh("mine", "Baking", 20), &closing, now()).is_none());
    }

    #[test]
    fn the_cancel_of_a_halted_refresh_is_reported_as_a_halt_with_its_resume() {
        let mut g = group("web", &[Some(NEW), Some(OLD)]);
        halted(&mut g, "r-1");
        let event = RefreshEvent {
            phase: Phase::Cancelled,
            group: "web".into(),
            refresh_id: "r-1".into(),
        };
        let plan = refresh_outcome(&event, &g, None, Some(&parameter(NEW, 60)), Some(now()));
        let Step::Report {
            outcome, notice, ..
        } = &plan[0]
        else {
            panic!()
        };
        assert_eq!(*outcome, Outcome::Done);
        assert!(
            notice.title.contains("halted for the maintenance window"),
            "{}",
            notice.title
        );
        assert!(notice.description.contains("resumed"));
    }

    fn mixed(g: &mut GroupState, arm_instances: &[&str]) {
        use shared::aws::autoscaling::Override;
        g.details.launch = LaunchSource::MixedInstances {
            template: template("1"),
        };
        let arm = LaunchTemplateRef {
            id: Some("lt-arm".into()),
            name: None,
            version: "$Latest".into(),
        };
        g.details.overrides = vec![
            Override {
                instance_type: Some("m5.large".into()),
                template: None,
            },
            Override {
                instance_type: Some("m7g.large".into()),
                template: Some(arm),
            },
        ];
        g.details.instance_types = g
            .running
            .keys()
            .map(|i| {
                let kind = if arm_instances.contains(&i.as_str()) {
                    "m7g.large"
                } else {
                    "m5.large"
                };
                (i.clone(), kind.to_string())
            })
            .collect();
    }

    fn lane_versions(x86: ImageRef, arm: ImageRef) -> BTreeMap<String, TemplateVersion> {
        BTreeMap::from([
            ("lt-1@1".to_string(), version(1, x86)),
            (
                "lt-arm@$Latest".to_string(),
                TemplateVersion {
                    template_id: "lt-arm".into(),
                    ..version(4, arm)
                },
            ),
        ])
    }

    fn resolve(name: &str) -> ImageRef {
        ImageRef::Parameter {
            name: name.into(),
            selector: None,
        }
    }

    #[test]
    fn each_lane_of_a_mixed_group_is_compared_with_its_own_templates_parameter() {
        const ARM_PARAM: &str = "/team/arm";
        const ARM_NEW: &str = "ami-00000000000armnew";
        let mut g = group("mix", &[Some(NEW), Some(ARM_NEW)]);
        mixed(&mut g, &["i-mix1"]);
        let versions = lane_versions(resolve(PARAM), resolve(ARM_PARAM));
        let lanes = lanes(&g.details, &versions, &BTreeMap::new(), &g.running).unwrap();
        assert_eq!(
            lanes
                .iter()
                .map(|l| (l.parameter.as_str(), l.instances.clone()))
                .collect::<Vec<_>>(),
            [
                (PARAM, vec!["i-mix0".to_string()]),
                (ARM_PARAM, vec!["i-mix1".to_string()])
            ]
        );
        g.parameter = lanes[0].parameter.clone();
        g.lanes = lanes;
        let mut o = observed(vec![g]);
        o.parameters.found.insert(
            ARM_PARAM.into(),
            AmiParameter {
                name: ARM_PARAM.into(),
                ..parameter(ARM_NEW, 60)
            },
        );
        o.images.insert(ARM_NEW.into(), al2023(ARM_NEW, "arm64"));
        expect_lanes(&mut o.groups[0], &o.parameters.clone());
        // Both lanes on their parameter's AMI: nothing to roll, no slot taken.
        assert!(o.groups[0].stale(NEW).is_empty());
        assert!(check(&o, &config(), now()).is_empty());
        // The arm64 lane drifts: a plain refresh (every lane resolves its parameter).
        let arm_old = "ami-00000000000armold";
        o.groups[0]
            .running
            .insert("i-mix1".into(), Some(arm_old.into()));
        o.images.insert(arm_old.into(), al2023(arm_old, "arm64"));
        assert_eq!(o.groups[0].stale(NEW).len(), 1);
        let plan = check(&o, &config(), now());
        let [Step::Roll { mode, request, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(*mode, RollMode::Current);
        assert_eq!(request.desired_template, None);
    }

    #[test]
    fn a_literal_lane_follows_the_tag_of_its_architecture_or_cannot_be_judged() {
        let arm_ami = "ami-0000000000armlit";
        let mut g = group("mix", &[Some(NEW), Some(arm_ami)]);
        mixed(&mut g, &["i-mix1"]);
        let versions = lane_versions(
            resolve(PARAM),
            ImageRef::Ami {
                image_id: arm_ami.into(),
            },
        );
        let images = BTreeMap::from([(arm_ami.to_string(), al2023(arm_ami, "arm64"))]);
        let why = lanes(&g.details, &versions, &images, &g.running).unwrap_err();
        assert!(why.contains("ecs-autopilot:ami-parameter:arm64"), "{why}");
        g.details
            .group
            .tags
            .insert(format!("{PARAMETER_TAG}:arm64"), "/team/arm".into());
        let lanes = lanes(&g.details, &versions, &images, &g.running).unwrap();
        assert_eq!(lanes[1].parameter, "/team/arm");
        // An instance type no override names, with a requirements override on its own
        // template: which template launched it can't be told.
        g.details
            .instance_types
            .insert("i-mix0".into(), "c6i.large".into());
        g.details
            .overrides
            .push(shared::aws::autoscaling::Override {
                instance_type: None,
                template: Some(template("9")),
            });
        assert!(super::lanes(&g.details, &versions, &images, &g.running).is_err());
    }

    #[test]
    fn a_mixed_group_with_a_literal_lane_is_judged_but_reported_not_rolled() {
        let arm_ami = "ami-0000000000armlit";
        let mut g = group("mix", &[Some(OLD), Some(arm_ami)]);
        mixed(&mut g, &["i-mix1"]);
        g.lanes = vec![Lane {
            template: template("1"),
            image: ImageRef::Ami {
                image_id: OLD.into(),
            },
            parameter: PARAM.into(),
            instances: vec!["i-mix0".into()],
        }];
        let plan = check(&observed(vec![g]), &config(), now());
        assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
    }
}
