//! Tags that record what was done for a retirement notice, so a repeated or updated
//! notice (AWS sends several) finds the work done and neither acts nor tells twice. A
//! notice is named in a tag by its [`marker`], a short stable hash of its event ARN.

use serde::Serialize;

/// Tag on a service whose tasks were replaced for a retirement notice; its value is
/// [`marker`] of the notice's event ARN. A repeated or updated notice finds it and does
/// not deploy again.
pub const HANDLED_TAG: &str = "ecs-autopilot:retirement-handled";

/// Tag on what a put-off retirement will replace (a service, or the Auto Scaling group of
/// an instance): the [`marker`]s of the notices whose later look is already queued, newest
/// first. A repeated notice that finds its marker on everything it would replace does not
/// queue a second look.
pub const SCHEDULED_TAG: &str = "ecs-autopilot:retirement-scheduled";

/// Tag on an opted-in group whose budget forecast was sent: a fingerprint of the hosts
/// that were waiting, so the notices of one wave (one per host, each seeing the whole
/// group) warn once.
pub const FORECAST_TAG: &str = "ecs-autopilot:retirement-forecast";

/// Markers kept in one [`SCHEDULED_TAG`] value: 14 × 17 characters fit the 256 a tag
/// value may hold.
const SCHEDULED_KEPT: usize = 14;

/// `existing` (a [`SCHEDULED_TAG`] value) with `marker` first, each marker once, the
/// oldest dropped beyond [`SCHEDULED_KEPT`].
pub fn with_marker(existing: Option<&str>, marker: &str) -> String {
    let older = existing
        .unwrap_or_default()
        .split_whitespace()
        .filter(|m| *m != marker);
    std::iter::once(marker)
        .chain(older)
        .take(SCHEDULED_KEPT)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn has_marker(value: Option<&String>, marker: &str) -> bool {
    value.is_some_and(|v| v.split_whitespace().any(|m| m == marker))
}

/// A short, stable fingerprint of an event ARN (64-bit FNV-1a, hex). Stable across
/// builds and Rust versions, unlike `std`'s hasher, because it is stored in AWS.
pub fn marker(event_arn: &str) -> String {
    let hash = event_arn.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// A tag that records what was done for a notice, written after the step it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Mark {
    /// An ECS service or task of a managed cluster.
    Ecs {
        arn: String,
        key: &'static str,
        value: String,
    },
    /// An opted-in Auto Scaling group (not propagated to its instances).
    Group {
        name: String,
        key: &'static str,
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:health:us-east-1::event/ECS/AWS_ECS_TASK_PATCHING_RETIREMENT/X";

    #[test]
    fn the_marker_is_stable_and_distinguishes_events() {
        assert_eq!(marker(""), "cbf29ce484222325");
        assert_eq!(marker("a"), "af63dc4c8601ec8c");
        assert_ne!(marker(ARN), marker(&format!("{ARN}2")));
    }

    #[test]
    fn the_scheduled_tag_keeps_the_newest_markers_once_within_a_tag_value() {
        assert_eq!(with_marker(None, "a"), "a");
        assert_eq!(with_marker(Some("b a c"), "a"), "a b c");
        let mut value = String::new();
        for n in 0..40 {
            value = with_marker(Some(&value), &marker(&n.to_string()));
        }
        assert!(value.len() <= 256, "{}", value.len());
        assert_eq!(value.split(' ').count(), SCHEDULED_KEPT);
        assert!(value.starts_with(&marker("39")));
        assert!(has_marker(Some(&value), &marker("30")));
        assert!(!has_marker(Some(&value), &marker("3")));
    }
}
