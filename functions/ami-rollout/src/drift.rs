//! Drift: which groups run another AMI than their parameter names, what holds a
//! drifted group back from a rollout (a refresh running, one halted that can't resume,
//! one that failed or left drift behind, an image it can't run), and the order drifted
//! groups take the rollout budget in: oldest drift first. Written once, used both to
//! choose whose launch templates are read and to decide the check.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use shared::aws::autoscaling::{InstanceRefresh, LaunchSource, RefreshStatus};
use shared::aws::ec2::Image;
use shared::aws::ssm::AmiParameter;

use crate::config::Config;
use crate::decide::{ImageProblem, NotRolled};
use crate::images;
use crate::observe::{GroupState, Observed};
use crate::tags::{own_refresh, OwnRefresh};
use crate::templates::{resumable, roll_mode};

/// The names of the groups whose instances drifted from their parameter's AMI.
pub fn drifted(observed: &Observed) -> Vec<&str> {
    observed
        .groups
        .iter()
        .filter(|g| target(observed, g).is_some_and(|p| !g.stale(&p.image_id).is_empty()))
        .map(GroupState::name)
        .collect()
}

/// The AMI the group's parameter names, when it was read and is usable.
pub fn target<'a>(observed: &'a Observed, g: &GroupState) -> Option<&'a AmiParameter> {
    observed.parameters.found.get(&g.parameter)
}

/// The group's refreshes, newest first (none read: none).
pub fn refreshes<'a>(observed: &'a Observed, group: &str) -> &'a [InstanceRefresh] {
    observed
        .refreshes
        .get(group)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Groups with a refresh running: each holds a slot of the budget.
pub fn refreshing(observed: &Observed) -> BTreeSet<&str> {
    observed
        .refreshes
        .iter()
        .filter(|(_, rs)| rs.iter().any(InstanceRefresh::is_active))
        .map(|(g, _)| g.as_str())
        .collect()
}

/// The budget's free slots.
pub fn slots(observed: &Observed, config: &Config) -> usize {
    config
        .max_concurrent_rollouts
        .saturating_sub(refreshing(observed).len())
}

/// Oldest drift first: a parameter that changed longer ago has waited longer.
pub fn oldest_first<T>(groups: &mut [T], of: impl Fn(&T) -> (&GroupState, &AmiParameter)) {
    groups.sort_by(|a, b| {
        let (a, ta) = of(a);
        let (b, tb) = of(b);
        (ta.last_modified, a.name()).cmp(&(tb.last_modified, b.name()))
    });
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
        .filter(|g| target(observed, g).is_some_and(|p| !g.stale(&p.image_id).is_empty()))
        .collect()
}

/// What holds a drifted, rollable group back, in the order the check reports it; else
/// the refresh the window guard halted that a rollout resumes (if any).
pub fn hold<'a>(
    state: &'a GroupState,
    target: &'a AmiParameter,
    refreshes: &'a [InstanceRefresh],
    known: &'a BTreeMap<String, Image>,
) -> Result<Option<&'a InstanceRefresh>, NotRolled<'a>> {
    if let Some(running) = refreshes.iter().find(|r| r.is_active()) {
        return Err(NotRolled::Refreshing(running));
    }
    let halted = halted_since(state, refreshes, target.last_modified);
    if let Some(h) = halted {
        if let Err(why) = resumable(state, h) {
            return Err(NotRolled::NotResumable { halted: h, why });
        }
    }
    if let Some(failed) = failed_since(refreshes, target.last_modified).filter(|_| halted.is_none())
    {
        return Err(NotRolled::FailedSince(failed));
    }
    if let Some(done) = succeeded_since(refreshes, target.last_modified) {
        return Err(NotRolled::LeftOver(done));
    }
    if let Some(why) = image_problem(state, target, known) {
        return Err(NotRolled::Image(why));
    }
    Ok(halted)
}

/// The groups that may take a rollout slot, oldest drift first, and how many slots are
/// free: launch templates are read in this order only until the slots are filled, so a
/// check of a large drifted fleet reads a handful of templates, not hundreds.
pub fn roll_order<'a>(
    observed: &'a Observed,
    config: &Config,
    now: DateTime<Utc>,
) -> (Vec<&'a GroupState>, usize) {
    let mut order: Vec<(&GroupState, &AmiParameter)> = rollable(observed, config, now)
        .into_iter()
        .filter_map(|g| Some((g, target(observed, g)?)))
        .filter(|(g, target)| {
            hold(g, target, refreshes(observed, g.name()), &observed.images).is_ok()
        })
        .collect();
    oldest_first(&mut order, |(g, t)| (g, t));
    (
        order.into_iter().map(|(g, _)| g).collect(),
        slots(observed, config),
    )
}

/// Whether the group's launch templates (already in `observed`) allow a rollout.
pub fn can_roll(observed: &Observed, group: &str, config: &Config) -> bool {
    let Some(state) = observed.groups.iter().find(|g| g.name() == group) else {
        return false;
    };
    let Some(target) = target(observed, state) else {
        return false;
    };
    let templates = observed.templates.get(group).cloned().unwrap_or_default();
    let halted = halted_since(state, refreshes(observed, group), target.last_modified);
    roll_mode(state, target, &templates, config, halted).is_ok()
}

/// Why the group's stale instances cannot run the target image, or why that cannot be
/// told (an image DescribeImages does not know): either way the group is not rolled.
fn image_problem<'a>(
    state: &'a GroupState,
    target: &'a AmiParameter,
    known: &'a BTreeMap<String, Image>,
) -> Option<ImageProblem<'a>> {
    let Some(new) = known.get(&target.image_id) else {
        return Some(ImageProblem::TargetUnknown(&target.image_id));
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
                None => return Some(ImageProblem::LaneTargetUnknown(expected)),
            }
        };
        match known.get(ami) {
            None => Some(ImageProblem::RunningUnknown {
                ami,
                target: &new.image_id,
            }),
            Some(current) => images::incompatibility(current, new).map(ImageProblem::Incompatible),
        }
    })
}

/// Whether the refresh started after the parameter last changed (an unknown time: no).
fn after_change(refresh: &InstanceRefresh, parameter_changed: Option<DateTime<Utc>>) -> bool {
    match (refresh.start_time, parameter_changed) {
        (Some(started), Some(changed)) => started >= changed,
        _ => false,
    }
}

/// The newest refresh, when it ended Successful after the parameter last changed: the
/// AMI is the one it rolled, so drift still there is something a refresh leaves.
fn succeeded_since(
    refreshes: &[InstanceRefresh],
    parameter_changed: Option<DateTime<Utc>>,
) -> Option<&InstanceRefresh> {
    let newest = refreshes.first()?;
    (newest.status == RefreshStatus::Successful && after_change(newest, parameter_changed))
        .then_some(newest)
}

/// The newest refresh, when the window guard halted it (Cancelled, tagged
/// `halted:<id>`) and the parameter has not changed since it started: the next window
/// resumes it rather than treating the cancel as a failure.
pub fn halted_since<'a>(
    state: &GroupState,
    refreshes: &'a [InstanceRefresh],
    parameter_changed: Option<DateTime<Utc>>,
) -> Option<&'a InstanceRefresh> {
    let newest = refreshes.first()?;
    (newest.status == RefreshStatus::Cancelled
        && after_change(newest, parameter_changed)
        && own_refresh(&state.details) == Some(OwnRefresh::Halted(&newest.id)))
    .then_some(newest)
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
    (failed && after_change(newest, parameter_changed)).then_some(newest)
}
