//! The pure core: from the managed groups, the AMIs their parameters name, the AMIs their
//! instances run, their refreshes and launch templates, decide what to read next, which
//! groups to roll, and why the rest is not rolled. No AWS calls here and no wording
//! (notices words every reason); the plan is data, so it is logged, dry-run and asserted
//! in tests.
//!
//! A check reads in turns: the groups, then — only if something may roll — the images
//! and refreshes that rollout needs, then launch templates in drift order until the
//! budget is filled. [`next`] says which read comes next ([`Next::Read`]) or that the
//! plan is ready ([`Next::Plan`]); lib's glue makes the read and asks again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::{
    GroupDetails, InstanceRefresh, LaunchSource, LaunchTemplateRef, LifecycleState, RefreshRequest,
    RefreshStatus,
};
use shared::aws::ec2::Image;
use shared::aws::ec2::{ImageRef, TemplateVersion};
use shared::aws::ssm::{AmiParameter, AmiParameters};
use shared::events::autoscaling::refresh::{Phase, RefreshEvent};
use shared::exec::{action, About, Report};
use shared::notify::{Notice, Outcome};

use crate::config::Config;
use crate::drift;
use crate::images;
use crate::notices;
use crate::observe::{GroupState, Observed};
use crate::tags::{
    is_own, is_paused, own_refresh, parameter_of, tag, OwnRefresh, PARAMETER_TAG, REFRESH_TAG,
    REPORTED_TAG,
};
use crate::templates::{
    has_lanes, lane_templates, lanes, roll_mode, template_of, LaneProblem, NotResumable, RollMode,
    TemplateProblem, Templates,
};

/// The action of a report about a group that is not checked at all.
pub const CHECK: &str = "check";
/// The action of a refresh's outcome report.
pub const REFRESH_OUTCOME: &str = "refresh-outcome";

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
    Report(Report),
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

pub type Plan = Vec<Step>;

fn report(state: &GroupState, action: &'static str, outcome: Outcome, notice: Notice) -> Step {
    Step::Report(Report {
        action,
        outcome,
        about: About {
            group: Some(state.name().to_string()),
            cluster: Some(state.cluster.clone()),
            ..About::default()
        },
        notice,
    })
}

// ---------------------------------------------------------------------------------
// Which groups a check is about, and what to read of them.

/// The groups a check is about: all opted-in groups, those named in `only`, or those
/// that may follow `parameter` (a group whose parameter depends on its images or lanes
/// may follow it; the choice is made once they are read, and the rest dropped then).
pub fn targets<'a>(
    managed: &'a [GroupDetails],
    parameter: Option<&str>,
    only: Option<&BTreeSet<String>>,
    config: &Config,
) -> Vec<&'a GroupDetails> {
    managed
        .iter()
        .filter(|g| only.is_none_or(|names| names.contains(&g.group.name)))
        .filter(|g| {
            parameter.is_none_or(|p| {
                needs_images(g, config) || has_lanes(g) || parameter_of(g, config) == p
            })
        })
        .collect()
}

/// Every opted-in group with its cluster (the budget's scope).
pub fn fleet(managed: &[GroupDetails]) -> Vec<(String, String)> {
    managed
        .iter()
        .filter_map(|g| Some((g.group.name.clone(), g.group.cluster()?.to_string())))
        .collect()
}

/// The opted-in clusters of `targets`, whose container instances are read.
pub fn clusters_to_read(targets: &[&GroupDetails], managed: &BTreeSet<String>) -> Vec<String> {
    let clusters: BTreeSet<&str> = targets
        .iter()
        .filter_map(|g| g.group.cluster())
        .filter(|c| managed.contains(*c))
        .collect();
    clusters.into_iter().map(str::to_string).collect()
}

/// Each target with what its in-service instances run (`ami_of`: EC2 instance → AMI
/// its container instance reports) and the parameter its tags or the default name.
pub fn group_states(
    targets: &[&GroupDetails],
    managed: &BTreeSet<String>,
    ami_of: &BTreeMap<String, Option<String>>,
    config: &Config,
) -> Vec<GroupState> {
    targets
        .iter()
        .map(|g| {
            let cluster = g.group.cluster().unwrap_or_default().to_string();
            group_state(g, managed.contains(&cluster), cluster, config, ami_of)
        })
        .collect()
}

pub fn group_state(
    details: &GroupDetails,
    cluster_managed: bool,
    cluster: String,
    config: &Config,
    ami_of: &BTreeMap<String, Option<String>>,
) -> GroupState {
    let running = details
        .group
        .instances
        .iter()
        .filter(|i| i.lifecycle_state == LifecycleState::InService)
        .map(|i| {
            let ami = ami_of.get(&i.instance_id).cloned().flatten();
            (i.instance_id.clone(), ami)
        })
        .collect();
    GroupState {
        details: details.clone(),
        cluster,
        cluster_managed,
        parameter: parameter_of(details, config),
        no_parameter: None,
        lanes: vec![],
        expected: BTreeMap::new(),
        running,
    }
}

/// The lane templates to read: each template of each opted-in lane group.
pub fn lane_reads(groups: &[GroupState]) -> Vec<(String, LaunchTemplateRef)> {
    groups
        .iter()
        .filter(|g| g.cluster_managed && has_lanes(&g.details))
        .flat_map(|g| {
            lane_templates(&g.details)
                .into_iter()
                .map(|t| (g.name().to_string(), t))
        })
        .collect()
}

/// Groups whose parameter is chosen from the images they run (or their lanes').
fn choosing<'a>(
    groups: &'a [GroupState],
    lane_versions: &'a BTreeMap<String, BTreeMap<String, TemplateVersion>>,
    config: &'a Config,
) -> impl Iterator<Item = usize> + 'a {
    (0..groups.len()).filter(move |&n| {
        groups[n].cluster_managed
            && (needs_images(&groups[n].details, config)
                || lane_versions.contains_key(groups[n].name()))
    })
}

/// The images to describe to choose parameters: those the choosing groups' instances
/// run, and lane templates' literal AMIs (their architecture picks the group's tag).
pub fn images_to_choose(
    groups: &[GroupState],
    lane_versions: &BTreeMap<String, BTreeMap<String, TemplateVersion>>,
    config: &Config,
) -> Vec<String> {
    let literal = lane_versions
        .values()
        .flat_map(|v| v.values())
        .filter_map(|v| match &v.image {
            ImageRef::Ami { image_id } => Some(image_id.clone()),
            _ => None,
        });
    let ids: BTreeSet<String> = choosing(groups, lane_versions, config)
        .flat_map(|n| groups[n].running.values().flatten().cloned())
        .chain(literal)
        .collect();
    ids.into_iter().collect()
}

/// Sets the parameter (or why none fits) of each group whose parameter depends on the
/// images its instances run, and the lanes of lane groups.
pub fn choose_parameters(
    groups: &mut [GroupState],
    lane_versions: &BTreeMap<String, BTreeMap<String, TemplateVersion>>,
    images: &BTreeMap<String, Image>,
    config: &Config,
) {
    let needing: Vec<usize> = choosing(groups, lane_versions, config).collect();
    for n in needing {
        let g = &mut groups[n];
        let running: BTreeSet<&String> = g.running.values().flatten().collect();
        let described: Vec<&Image> = running.iter().filter_map(|id| images.get(*id)).collect();
        let chosen = if described.len() < running.len() {
            Err(NoFit::Undescribed {
                missing: running.len() - described.len(),
                total: running.len(),
            })
        } else {
            choose_parameter(&g.details, config, &described)
        };
        match chosen {
            Ok(p) => g.parameter = p,
            Err(why) => {
                g.parameter = String::new();
                g.no_parameter = Some(NoParameter::Untagged(why));
            }
        }
        // A mixed instances group with override templates: each lane's parameter.
        if let Some(versions) = lane_versions.get(g.name()) {
            match lanes(&g.details, versions, images, &g.running) {
                Ok(lanes) => {
                    g.parameter = lanes[0].parameter.clone();
                    g.no_parameter = None;
                    g.lanes = lanes;
                }
                Err(why) => {
                    g.parameter = String::new();
                    g.no_parameter = Some(NoParameter::Lanes(why));
                }
            }
        }
    }
}

/// With a changed parameter, only the groups following it (or with a lane following it).
pub fn keep_following(groups: &mut Vec<GroupState>, changed: Option<&str>) {
    if let Some(p) = changed {
        groups.retain(|g| g.parameter == p || g.lanes.iter().any(|l| l.parameter == p));
    }
}

/// The parameters to read: those the opted-in groups (and their lanes) follow.
pub fn parameters_to_read(groups: &[GroupState]) -> Vec<String> {
    let names: BTreeSet<String> = groups
        .iter()
        .filter(|g| g.cluster_managed && !g.parameter.is_empty())
        .flat_map(|g| {
            std::iter::once(g.parameter.clone()).chain(g.lanes.iter().map(|l| l.parameter.clone()))
        })
        .collect();
    names.into_iter().collect()
}

/// Once the parameters are read: each lane group's expected AMIs.
pub fn expect_all_lanes(groups: &mut [GroupState], parameters: &AmiParameters) {
    for g in groups.iter_mut().filter(|g| !g.lanes.is_empty()) {
        expect_lanes(g, parameters);
    }
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
            state.no_parameter = Some(NoParameter::LaneUnusable {
                template: lane.template.label().to_string(),
                parameter: lane.parameter.clone(),
                why,
            });
            state.parameter = String::new();
            return;
        };
        for i in &lane.instances {
            expected.insert(i.clone(), p.image_id.clone());
        }
    }
    state.expected = expected;
}

/// Why no parameter fits a group (notices words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoParameter {
    /// No plain tag, and the images its instances run name no single parameter.
    Untagged(NoFit),
    /// A lane group whose lanes can't be told apart.
    Lanes(LaneProblem),
    /// A lane follows a parameter that is unusable.
    LaneUnusable {
        template: String,
        parameter: String,
        why: String,
    },
}

/// Why the images a group's instances run name no single parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoFit {
    Undescribed {
        missing: usize,
        total: usize,
    },
    NoneDescribed,
    /// Not ECS-optimized AMIs AWS publishes a parameter for (id, name).
    NotPublished(Vec<(String, String)>),
    /// Images of different families or architectures (id, name).
    Mixed(Vec<(String, String)>),
}

/// Whether choosing the group's parameter needs the images its instances run: it has
/// per-architecture tags, or no tag and no configured default.
pub fn needs_images(details: &GroupDetails, config: &Config) -> bool {
    let tags = &details.group.tags;
    tags.keys()
        .any(|k| k.starts_with(&format!("{PARAMETER_TAG}:")))
        || (tag(details, PARAMETER_TAG).is_none() && config.default_parameter.is_empty())
}

/// The parameter a group follows, from the images its instances run (`running`: the
/// described ones): the tag for their architecture, else the plain tag, else
/// `DEFAULT_AMI_PARAMETER`, else the parameter AWS publishes for their ECS-optimized
/// family and architecture. A group whose images don't name one answer is not guessed.
pub fn choose_parameter(
    details: &GroupDetails,
    config: &Config,
    running: &[&Image],
) -> Result<String, NoFit> {
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
            .map(|i| (i.image_id.clone(), i.name.clone()))
            .collect::<Vec<_>>()
    };
    let recommended: BTreeSet<Option<String>> = running
        .iter()
        .map(|i| images::recommended_parameter(i))
        .collect();
    match recommended.into_iter().collect::<Vec<_>>()[..] {
        [Some(ref p)] => Ok(p.clone()),
        [] => Err(NoFit::NoneDescribed),
        [None] => Err(NoFit::NotPublished(amis())),
        _ => Err(NoFit::Mixed(amis())),
    }
}

// ---------------------------------------------------------------------------------
// What a check reads next.

/// A check's next step: a read, or the plan.
#[derive(Debug)]
pub enum Next {
    Read(Read),
    Plan(Plan),
}

/// A follow-up read of a check, once something may roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The target images and the images they would replace (one call for the check).
    Images(Vec<String>),
    /// The refreshes of every group that could hold a slot of the budget.
    Refreshes(Vec<String>),
    /// One group's launch template versions (in drift order, until the slots fill).
    Templates {
        group: String,
        template: LaunchTemplateRef,
    },
}

/// What a follow-up read found.
#[derive(Debug, Clone)]
pub enum Found {
    Images(BTreeMap<String, Image>),
    Refreshes(Vec<(String, Vec<InstanceRefresh>)>),
    /// Boxed: two template versions are most of its size.
    Templates(String, Box<Templates>),
}

impl Observed {
    /// Adds what a read found.
    pub fn absorb(&mut self, found: Found) {
        match found {
            Found::Images(images) => {
                self.images.extend(images);
                self.looked.images = true;
            }
            Found::Refreshes(refreshes) => {
                self.refreshes = refreshes.into_iter().collect();
                self.looked.refreshes = true;
            }
            Found::Templates(group, templates) => {
                self.templates.insert(group, *templates);
            }
        }
    }
}

/// What the check reads next, or its plan. Nothing more is read when nothing may roll
/// (no drift, or the window is closed). Else: the images not yet described, the
/// refreshes of every group that could hold a slot (groups of opted-in clusters:
/// groups of clusters that never opted in cost nothing), then launch templates in
/// drift order until as many groups can roll as there are free slots.
pub fn next(observed: &Observed, config: &Config, now: DateTime<Utc>) -> Next {
    let rollable = drift::rollable(observed, config, now);
    if rollable.is_empty() {
        return Next::Plan(check(observed, config, now));
    }
    if !observed.looked.images {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for g in &rollable {
            if let Some(target) = drift::target(observed, g) {
                ids.extend(g.stale(&target.image_id).into_values().map(str::to_string));
                ids.insert(target.image_id.clone());
                // A lane group's instances are compared with their lane's AMI.
                ids.extend(g.expected.values().cloned());
            }
        }
        let missing: Vec<String> = ids
            .into_iter()
            .filter(|id| !observed.images.contains_key(id))
            .collect();
        if !missing.is_empty() {
            return Next::Read(Read::Images(missing));
        }
    }
    if !observed.looked.refreshes {
        let names = observed
            .fleet
            .iter()
            .filter(|(_, cluster)| observed.managed_clusters.contains(cluster))
            .map(|(name, _)| name.clone())
            .collect();
        return Next::Read(Read::Refreshes(names));
    }
    let (order, slots) = drift::roll_order(observed, config, now);
    let mut rollable = 0;
    for g in order {
        if rollable >= slots {
            break;
        }
        if !observed.templates.contains_key(g.name()) {
            if let Some(template) = template_of(&g.details.launch) {
                return Next::Read(Read::Templates {
                    group: g.name().to_string(),
                    template: template.clone(),
                });
            }
        }
        if drift::can_roll(observed, g.name(), config) {
            rollable += 1;
        }
    }
    Next::Plan(check(observed, config, now))
}

// ---------------------------------------------------------------------------------
// The check.

/// Why a group is reported rather than rolled.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason<'a> {
    /// Its cluster lacks `ecs-autopilot:managed=true`.
    NotOptedIn,
    NoParameter(&'a NoParameter),
    /// Its parameter can't be read or names no AMI.
    ParameterUnusable(String),
    /// Drifted from the parameter's AMI, and not rolled.
    Drifted {
        target: &'a AmiParameter,
        stale: BTreeMap<&'a str, &'a str>,
        why: NotRolled<'a>,
    },
}

impl Reason<'_> {
    pub fn action(&self) -> &'static str {
        match self {
            Reason::Drifted { .. } => action::ROLLOUT,
            _ => CHECK,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Reason::Drifted { why, .. } => why.outcome(),
            _ => Outcome::Skipped,
        }
    }
}

/// Why a drifted group is not rolled.
#[derive(Debug, Clone, PartialEq)]
pub enum NotRolled<'a> {
    /// Tagged `ROLLOUT_TAG=paused`.
    Paused,
    Unsupported(Unsupported<'a>),
    /// A refresh is running already.
    Refreshing(&'a InstanceRefresh),
    /// ami-rollout halted its refresh at the window's close, and it can't be resumed.
    NotResumable {
        halted: &'a InstanceRefresh,
        why: NotResumable,
    },
    /// The newest refresh failed after the parameter changed: the same AMI isn't retried.
    FailedSince(&'a InstanceRefresh),
    /// The newest refresh succeeded after the parameter changed, yet drift is left.
    LeftOver(&'a InstanceRefresh),
    Image(ImageProblem<'a>),
    Template(TemplateProblem),
}

impl NotRolled<'_> {
    pub fn outcome(&self) -> Outcome {
        match self {
            NotRolled::Refreshing(_) => Outcome::AlreadyDone,
            NotRolled::NotResumable { .. } | NotRolled::LeftOver(_) => Outcome::Warning,
            _ => Outcome::Skipped,
        }
    }
}

/// A launch setup ami-rollout doesn't roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported<'a> {
    LaunchConfiguration(&'a str),
    Unknown,
}

/// Why the target image is not known to fit a group's instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageProblem<'a> {
    /// The parameter's AMI can't be described.
    TargetUnknown(&'a str),
    /// The AMI a lane's parameter names can't be described.
    LaneTargetUnknown(&'a str),
    /// The AMI instances run can't be described.
    RunningUnknown { ami: &'a str, target: &'a str },
    /// images::incompatibility's sentence.
    Incompatible(String),
}

/// A group reported, and why.
#[derive(Debug, Clone)]
pub struct Finding<'a> {
    pub group: &'a GroupState,
    pub reason: Reason<'a>,
}

/// A drifted group that may be rolled, waiting for a slot in the budget.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub state: &'a GroupState,
    pub target: &'a AmiParameter,
    /// The halted refresh this one resumes.
    pub resumed: Option<&'a InstanceRefresh>,
    pub stale: BTreeMap<&'a str, &'a str>,
    pub mode: RollMode,
    pub request: RefreshRequest,
}

/// Drifted groups left for later, summarised in one notification rather than one per
/// group per check: on a large fleet, a budget of one leaves hundreds waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting<'a> {
    pub window: Vec<&'a str>,
    pub budget: Vec<&'a str>,
    /// Groups whose refresh holds a slot.
    pub refreshing: BTreeSet<&'a str>,
}

/// What a check decided: reports, then rollouts in the order they start, then who waits.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    pub findings: Vec<Finding<'a>>,
    pub rolls: Vec<Candidate<'a>>,
    pub waiting: Option<Waiting<'a>>,
}

/// A check of `observed.groups` as a plan: roll what drifted, within the window and
/// the budget, oldest drift first; say why the rest was not rolled.
pub fn check(observed: &Observed, config: &Config, now: DateTime<Utc>) -> Plan {
    let decided = judge(observed, config, now);
    let mut plan: Plan = decided
        .findings
        .iter()
        .map(|f| {
            report(
                f.group,
                f.reason.action(),
                f.reason.outcome(),
                notices::finding(f, config),
            )
        })
        .collect();
    plan.extend(decided.rolls.iter().map(roll_step));
    if let Some(w) = &decided.waiting {
        plan.push(Step::Report(Report {
            action: action::ROLLOUT,
            outcome: Outcome::Skipped,
            about: About::default(),
            notice: notices::waiting(w, config, now),
        }));
    }
    plan
}

/// The check's decisions, group by group.
pub fn judge<'a>(observed: &'a Observed, config: &Config, now: DateTime<Utc>) -> Check<'a> {
    let mut findings = vec![];
    let mut candidates = vec![];
    let mut waiting_window: Vec<&str> = vec![];
    let mut unread: Vec<&str> = vec![];
    let refreshing = drift::refreshing(observed);
    for state in &observed.groups {
        let mut found = |reason| {
            findings.push(Finding {
                group: state,
                reason,
            })
        };
        if !state.cluster_managed {
            found(Reason::NotOptedIn);
            continue;
        }
        if let Some(why) = &state.no_parameter {
            found(Reason::NoParameter(why));
            continue;
        }
        let Some(target) = drift::target(observed, state) else {
            let why = observed
                .parameters
                .unusable
                .get(&state.parameter)
                .cloned()
                .unwrap_or_else(|| "parameter not read".into());
            found(Reason::ParameterUnusable(why));
            continue;
        };
        let stale = state.stale(&target.image_id);
        if stale.is_empty() {
            continue;
        }
        let mut drifted = |why| {
            found(Reason::Drifted {
                target,
                stale: stale.clone(),
                why,
            })
        };
        if state.paused() {
            drifted(NotRolled::Paused);
            continue;
        }
        let unsupported = match &state.details.launch {
            LaunchSource::LaunchConfiguration { name } => {
                Some(Unsupported::LaunchConfiguration(name))
            }
            LaunchSource::Unknown => Some(Unsupported::Unknown),
            _ => None,
        };
        if let Some(why) = unsupported {
            drifted(NotRolled::Unsupported(why));
            continue;
        }
        if !config.may_replace(now) {
            waiting_window.push(state.name());
            continue;
        }
        let halted = match drift::hold(
            state,
            target,
            drift::refreshes(observed, state.name()),
            &observed.images,
        ) {
            Ok(halted) => halted,
            Err(why) => {
                drifted(why);
                continue;
            }
        };
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
            Err(why) => drifted(NotRolled::Template(why)),
        }
    }
    drift::oldest_first(&mut candidates, |c| (c.state, c.target));
    let slots = drift::slots(observed, config);
    let mut waiting_budget = vec![];
    let mut rolls = vec![];
    for (n, c) in candidates.into_iter().enumerate() {
        if n >= slots {
            waiting_budget.push(c.state.name());
            continue;
        }
        rolls.push(c);
    }
    waiting_budget.extend(unread);
    let waiting = (!waiting_window.is_empty() || !waiting_budget.is_empty()).then_some(Waiting {
        window: waiting_window,
        budget: waiting_budget,
        refreshing,
    });
    Check {
        findings,
        rolls,
        waiting,
    }
}

fn roll_step(c: &Candidate<'_>) -> Step {
    Step::Roll {
        group: c.state.name().to_string(),
        cluster: c.state.cluster.clone(),
        mode: c.mode.clone(),
        request: Box::new(c.request.clone()),
        notice: notices::rolling(c),
        previous_mark: tag(&c.state.details, REFRESH_TAG).map(str::to_string),
    }
}

// ---------------------------------------------------------------------------------
// The window guard.

/// Whether the window guard has anything to look at: without a maintenance window
/// nothing is ever halted or resumed.
pub fn guards(config: &Config) -> bool {
    !config.window.is_always()
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

/// The halts for the refreshes the guard read (group → its refresh, if found).
pub fn halts(
    groups: &[GroupDetails],
    found: &[(String, Option<InstanceRefresh>)],
    config: &Config,
    now: DateTime<Utc>,
) -> Plan {
    found
        .iter()
        .filter_map(|(group, refresh)| {
            let details = groups.iter().find(|g| &g.group.name == group)?;
            halt_plan(details, refresh.as_ref()?, config, now)
        })
        .collect()
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
    Some(Step::Halt {
        group: group.group.name.clone(),
        cluster: group.group.cluster().unwrap_or_default().to_string(),
        refresh_id: refresh.id.clone(),
        notice: notices::halting(&group.group.name, refresh, config, now),
    })
}

/// What resuming halted groups takes of their check: only the rollouts (everything
/// else is the scheduled check's to report).
pub fn resumes(plan: Plan) -> Plan {
    plan.into_iter()
        .filter(|s| matches!(s, Step::Roll { .. }))
        .collect()
}

// ---------------------------------------------------------------------------------
// A refresh's outcome.

/// Why an ended refresh is not ami-rollout's to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOurs {
    GroupGone,
    UnmanagedGroup,
    UnmanagedCluster(String),
}

/// The group whose refresh ended and its cluster, when it may be ami-rollout's to
/// report (its cluster's opt-in is read next).
pub fn outcome_scope(details: Option<&GroupDetails>) -> Result<(&GroupDetails, &str), NotOurs> {
    let details = details.ok_or(NotOurs::GroupGone)?;
    let cluster = details.group.cluster().ok_or(NotOurs::UnmanagedGroup)?;
    Ok((details, cluster))
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
        return vec![report(
            state,
            REFRESH_OUTCOME,
            Outcome::AlreadyDone,
            notices::already_reported(event, state),
        )];
    }
    let halted = event.phase == Phase::Cancelled
        && own_refresh(&state.details) == Some(OwnRefresh::Halted(&event.refresh_id));
    let ended = notices::refresh_ended(event, state, refresh, target);
    let outcome = if halted {
        report(
            state,
            REFRESH_OUTCOME,
            Outcome::Done,
            notices::halted_for_window(ended, state, resumes_at),
        )
    } else {
        report(state, REFRESH_OUTCOME, ended_outcome(event.phase), ended)
    };
    vec![
        outcome,
        Step::MarkReported {
            group: state.name().to_string(),
            refresh_id: event.refresh_id.clone(),
        },
    ]
}

/// A refresh that succeeded is done; any other end is a warning.
pub fn ended_outcome(phase: Phase) -> Outcome {
    match phase {
        Phase::Succeeded => Outcome::Done,
        _ => Outcome::Warning,
    }
}

#[cfg(test)]
mod tests;
