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
    /// Tasks still running on the draining host at the last look, so the next look lists
    /// only the RUNNING ones (see `Ecs::tasks_on_draining`). None: list both, as on the
    /// first look (also for checks queued before this field existed, or very busy hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_tasks: Option<Vec<String>>,
}

// One intent per invocation, built once: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// A lifecycle hook holds an instance until we complete it.
    Lifecycle {
        action: LifecycleAction,
        progress: Progress,
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

pub fn intent(event: &Envelope) -> Result<Intent, Error> {
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
            Ok(Intent::Lifecycle { action, progress })
        }
        autoscaling::TEST_NOTIFICATION => {
            Ok(Intent::Ignore("lifecycle hook test notification".into()))
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

    fn fixture(name: &str) -> Envelope {
        let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        Envelope::parse_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
    }

    #[test]
    fn a_fresh_terminate_event_starts_its_clock_at_the_event_time() {
        let e = fixture("autoscaling-terminate-lifecycle.json");
        let Intent::Lifecycle { progress, action } = intent(&e).unwrap() else {
            panic!()
        };
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
}
