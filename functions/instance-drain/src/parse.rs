//! Turns an event into what instance-drain should look at. Every source that means
//! "this instance is going away" or "this instance is arriving" ends up as one intent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::events::autoscaling::{self, LifecycleAction, Transition};
use shared::events::ec2::{self, InstanceWarning};
use shared::events::Envelope;
use shared::Error;

/// What a drain or launch check carries from one look to the next (inside the event it
/// sends back to its queue), so a check needs no database and few API calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// How many times this action has been looked at before.
    pub checks: u32,
    /// When the lifecycle action began (the event's time on the first look).
    pub started_at: Option<DateTime<Utc>>,
    pub cluster: Option<String>,
    pub container_instance_arn: Option<String>,
    /// Blocking tasks on the host when the drain started.
    pub tasks_at_start: usize,
    /// Services already known to use the DAEMON strategy, or known not to.
    #[serde(default)]
    pub daemon_services: Vec<String>,
    #[serde(default)]
    pub replica_services: Vec<String>,
    /// Standalone tasks this drain stopped.
    #[serde(default)]
    pub standalone_stopped: usize,
    /// The tasks that still blocked the drain at the last look. A DRAINING host gets no
    /// new tasks, so a re-check only describes these instead of listing the host again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking_tasks: Option<Vec<String>>,
    /// The own hook's HeartbeatTimeout and GlobalTimeout (seconds), read once by the
    /// first look's DescribeLifecycleHooks so a re-check needs no extra call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_timeout: Option<i64>,
    /// The host carries the quarantine tag: it is held, not drained.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quarantined: bool,
    /// Looks in a row that failed after their heartbeat and were re-queued.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_looks: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where an instance comes from or goes to in a lifecycle action (`Origin` and
/// `Destination`): warm pools add `WarmPool` to the plain EC2 ↔ group moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Place {
    Ec2,
    AutoScalingGroup,
    WarmPool,
}

impl Place {
    fn parse(event: &Envelope, field: &str, default: Place) -> Result<Place, Error> {
        match event.detail.get(field) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => match v.as_str() {
                Some("EC2") => Ok(Place::Ec2),
                Some("AutoScalingGroup") => Ok(Place::AutoScalingGroup),
                Some("WarmPool") => Ok(Place::WarmPool),
                _ => Err(Error::BadEvent(format!(
                    "lifecycle action {field} {:?} is none of EC2, AutoScalingGroup, WarmPool",
                    shared::notify::escape(&v.to_string(), 100)
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// A lifecycle hook holds an instance until we complete it.
    Lifecycle {
        action: LifecycleAction,
        /// Boxed: it is most of the intent's size.
        progress: Box<Progress>,
        origin: Place,
        destination: Place,
    },
    /// A spot instance is reclaimed in two minutes: drain now, there is no hook.
    SpotInterruption(InstanceWarning),
    /// Nothing to do (hook test notifications); logged only.
    Ignore(String),
}

impl Intent {
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Lifecycle { action, .. } => match action.transition {
                Transition::Terminating => "lifecycle-terminate",
                Transition::Launching => "lifecycle-launch",
            },
            Intent::SpotInterruption(_) => "spot-interruption",
            Intent::Ignore(_) => "ignored",
        }
    }
}

/// A hook's test notification, whichever envelope brought it: a direct hook message
/// (its detail-type), or an EventBridge or re-wrapped event whose detail says so.
fn is_test_notification(event: &Envelope) -> bool {
    event.detail_type == autoscaling::TEST_NOTIFICATION
        || event
            .detail
            .get("Event")
            .and_then(serde_json::Value::as_str)
            == Some(autoscaling::TEST_NOTIFICATION)
}

pub fn intent(event: &Envelope) -> Result<Intent, Error> {
    if is_test_notification(event) {
        return Ok(Intent::Ignore("lifecycle hook test notification".into()));
    }
    match event.detail_type.as_str() {
        autoscaling::TERMINATE_ACTION | autoscaling::LAUNCH_ACTION => {
            let action = LifecycleAction::from_envelope(event)?;
            let mut progress: Progress = match &event.carry {
                Some(c) => serde_json::from_value(c.clone()).map_err(|e| {
                    Error::BadEvent(format!("carried drain progress does not parse: {e}"))
                })?,
                None => Progress::default(),
            };
            progress.started_at.get_or_insert(event.time);
            // Events without the fields (older shapes, direct hook messages) are the
            // plain moves: launch EC2 -> group, terminate group -> EC2.
            let (from, to) = match action.transition {
                Transition::Launching => (Place::Ec2, Place::AutoScalingGroup),
                Transition::Terminating => (Place::AutoScalingGroup, Place::Ec2),
            };
            Ok(Intent::Lifecycle {
                action,
                progress: Box::new(progress),
                origin: Place::parse(event, "Origin", from)?,
                destination: Place::parse(event, "Destination", to)?,
            })
        }
        ec2::SPOT_INTERRUPTION => Ok(Intent::SpotInterruption(InstanceWarning::from_envelope(
            event,
        )?)),
        other => Err(Error::BadEvent(format!(
            "instance-drain does not handle {other:?} events from {:?}",
            event.source
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::envelope as fixture;

    #[test]
    fn a_fresh_terminate_event_starts_its_clock_at_the_event_time() {
        let e = fixture("autoscaling-terminate-lifecycle.json");
        let Intent::Lifecycle {
            progress,
            action,
            origin,
            destination,
        } = intent(&e).unwrap()
        else {
            panic!()
        };
        assert_eq!((origin, destination), (Place::AutoScalingGroup, Place::Ec2));
        assert_eq!(progress.started_at, Some(e.time));
        assert_eq!(progress.checks, 0);
        assert_eq!(action.transition, Transition::Terminating);
    }

    #[test]
    fn carried_progress_is_read_back() {
        let mut e = fixture("autoscaling-terminate-lifecycle.json");
        let p = Progress {
            checks: 4,
            cluster: Some("c".into()),
            ..Default::default()
        };
        e.carry = Some(serde_json::to_value(&p).unwrap());
        let Intent::Lifecycle { progress, .. } = intent(&e).unwrap() else {
            panic!()
        };
        assert_eq!(progress.checks, 4);
        assert_eq!(progress.cluster.as_deref(), Some("c"));
    }

    #[test]
    fn test_notifications_are_ignored_and_other_events_rejected() {
        assert!(matches!(
            intent(&fixture("autoscaling-test-notification.json")).unwrap(),
            Intent::Ignore(_)
        ));
        let mut e = fixture("ec2-spot-interruption.json");
        assert!(matches!(intent(&e).unwrap(), Intent::SpotInterruption(_)));
        e.detail_type = "EC2 Instance State-change Notification".into();
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn warm_pool_moves_are_read_from_origin_and_destination() {
        let mut e = fixture("autoscaling-launch-lifecycle.json");
        e.detail["Origin"] = "EC2".into();
        e.detail["Destination"] = "WarmPool".into();
        let Intent::Lifecycle {
            origin,
            destination,
            ..
        } = intent(&e).unwrap()
        else {
            panic!()
        };
        assert_eq!((origin, destination), (Place::Ec2, Place::WarmPool));
        e.detail["Destination"] = "Moon".into();
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn a_test_notification_inside_an_eventbridge_envelope_is_ignored() {
        let mut e = fixture("autoscaling-launch-lifecycle.json");
        e.detail = serde_json::json!({
            "AccountId": "123456789012", "RequestId": "r", "AutoScalingGroupName": "g",
            "AutoScalingGroupARN": "arn", "Service": "AWS Auto Scaling",
            "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2024-06-12T20:30:00.000Z"
        });
        assert!(matches!(intent(&e).unwrap(), Intent::Ignore(_)));
    }

    #[test]
    fn any_payload_is_an_intent_or_a_bad_event_never_a_panic() {
        use shared::testing::strategies;
        strategies::check(
            "instance-drain parse::intent",
            strategies::payloads(),
            |v| {
                if let Ok(e) = Envelope::parse(v) {
                    strategies::assert_ok_or_bad_event("intent", &intent(&e));
                }
            },
        );
    }
}
