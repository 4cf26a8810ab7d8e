//! The group tags ami-rollout reads (which parameter a group follows, whether its
//! rollouts are paused) and the ones it writes on a group (its own refresh, the refresh
//! whose outcome it reported).

use chrono::{DateTime, Utc};
use shared::aws::autoscaling::{GroupDetails, InstanceRefresh};

use crate::config::Config;

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

/// A tag's trimmed value; an empty one counts as absent.
pub fn tag<'a>(details: &'a GroupDetails, key: &str) -> Option<&'a str> {
    details
        .group
        .tags
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The parameter the group's plain tag names, else the configured default.
pub fn parameter_of(details: &GroupDetails, config: &Config) -> String {
    tag(details, PARAMETER_TAG)
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
