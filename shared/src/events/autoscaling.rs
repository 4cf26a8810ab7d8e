//! Auto Scaling events: lifecycle actions (launch and terminate hooks).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::Envelope;
use crate::error::Error;

pub const TERMINATE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
pub const LAUNCH_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
pub const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Transition {
    Launching,
    Terminating,
}

/// A pending lifecycle action: the instance waits in `Pending:Wait` or
/// `Terminating:Wait` until someone completes it or its heartbeat runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleAction {
    pub group: String,
    pub hook: String,
    pub instance_id: String,
    pub token: Option<String>,
    pub transition: Transition,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    #[serde(default)]
    lifecycle_action_token: Option<String>,
    auto_scaling_group_name: String,
    lifecycle_hook_name: String,
    #[serde(rename = "EC2InstanceId")]
    ec2_instance_id: String,
    lifecycle_transition: String,
}

impl LifecycleAction {
    pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
        let d: Detail = event.detail_as()?;
        let transition = match d.lifecycle_transition.as_str() {
            TERMINATING => Transition::Terminating,
            LAUNCHING => Transition::Launching,
            other => {
                return Err(Error::BadEvent(format!(
                    "unknown LifecycleTransition {other:?}"
                )))
            }
        };
        if !d.ec2_instance_id.starts_with("i-") {
            return Err(Error::BadEvent(format!(
                "EC2InstanceId {:?} is not an instance id",
                d.ec2_instance_id
            )));
        }
        Ok(LifecycleAction {
            group: d.auto_scaling_group_name,
            hook: d.lifecycle_hook_name,
            instance_id: d.ec2_instance_id,
            token: d.lifecycle_action_token.filter(|t| !t.is_empty()),
            transition,
        })
    }
}

/// A hook can also notify an SQS queue directly (not through EventBridge); its message
/// carries the same fields at the top level, plus `autoscaling:TEST_NOTIFICATION`
/// messages when the hook is created. Both become envelopes so one path handles them.
pub fn from_hook_notification(value: &Value) -> Result<Option<Envelope>, Error> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    let str_of = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let is_test = str_of("Event").as_deref() == Some(TEST_NOTIFICATION);
    let transition = str_of("LifecycleTransition");
    if !is_test && transition.is_none() {
        return Ok(None);
    }
    let detail_type = match transition.as_deref() {
        _ if is_test => TEST_NOTIFICATION,
        Some(TERMINATING) => TERMINATE_ACTION,
        Some(LAUNCHING) => LAUNCH_ACTION,
        Some(other) => {
            return Err(Error::BadEvent(format!(
                "unknown LifecycleTransition {other:?}"
            )))
        }
        None => unreachable!("checked above"),
    };
    let time = str_of("Time")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| Error::BadEvent("hook notification without a valid Time".into()))?;
    let mut detail = obj.clone();
    detail.remove("Time");
    Ok(Some(Envelope {
        id: str_of("RequestId").unwrap_or_default(),
        detail_type: detail_type.to_string(),
        source: "aws.autoscaling".into(),
        account: str_of("AccountId").unwrap_or_default(),
        region: String::new(),
        time,
        resources: vec![],
        detail: Value::Object(detail),
        carry: None,
        other: Map::new(),
    }))
}

/// An EventBridge lifecycle event as AWS would send it; used by tests and the demo.
pub fn sample_event(action: &LifecycleAction, id: &str, time: DateTime<Utc>) -> Value {
    let (detail_type, transition) = match action.transition {
        Transition::Terminating => (TERMINATE_ACTION, TERMINATING),
        Transition::Launching => (LAUNCH_ACTION, LAUNCHING),
    };
    json!({
        "version": "0", "id": id, "detail-type": detail_type, "source": "aws.autoscaling",
        "account": "123456789012", "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1", "resources": [],
        "detail": {
            "LifecycleActionToken": action.token, "AutoScalingGroupName": action.group,
            "LifecycleHookName": action.hook, "EC2InstanceId": action.instance_id,
            "LifecycleTransition": transition, "Origin": "AutoScalingGroup", "Destination": "EC2"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::fixture;

    #[test]
    fn terminate_fixture_parses_into_a_terminating_action() {
        let e = Envelope::parse(fixture("autoscaling-terminate-lifecycle.json")).unwrap();
        let a = LifecycleAction::from_envelope(&e).unwrap();
        assert_eq!(a.transition, Transition::Terminating);
        assert_eq!(a.group, "my-asg");
        assert_eq!(a.instance_id, "i-1234567890abcdef0");
        assert!(a.token.is_some());
    }

    #[test]
    fn launch_fixture_parses_into_a_launching_action() {
        let e = Envelope::parse(fixture("autoscaling-launch-lifecycle.json")).unwrap();
        let a = LifecycleAction::from_envelope(&e).unwrap();
        assert_eq!(a.transition, Transition::Launching);
    }

    #[test]
    fn direct_hook_notifications_become_envelopes() {
        let e = Envelope::parse(fixture("autoscaling-hook-notification-sqs.json")).unwrap();
        assert_eq!(e.detail_type, TERMINATE_ACTION);
        let a = LifecycleAction::from_envelope(&e).unwrap();
        assert_eq!(a.hook, "drain-hook");
        let t = Envelope::parse(fixture("autoscaling-test-notification.json")).unwrap();
        assert_eq!(t.detail_type, TEST_NOTIFICATION);
    }

    #[test]
    fn missing_fields_and_bad_transitions_are_bad_events() {
        let mut v = fixture("autoscaling-terminate-lifecycle.json");
        v["detail"]["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_EXPLODING");
        let e = Envelope::parse(v.clone()).unwrap();
        assert!(matches!(
            LifecycleAction::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
        v["detail"] = json!({"AutoScalingGroupName": "g"});
        let e = Envelope::parse(v).unwrap();
        assert!(matches!(
            LifecycleAction::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
    }

    #[test]
    fn sample_event_round_trips() {
        let a = LifecycleAction {
            group: "g".into(),
            hook: "h".into(),
            instance_id: "i-1".into(),
            token: Some("t".into()),
            transition: Transition::Launching,
        };
        let e = Envelope::parse(sample_event(&a, "id", Utc::now())).unwrap();
        assert_eq!(LifecycleAction::from_envelope(&e).unwrap(), a);
    }
}

/// Instance refresh events: how a rolling replacement of a group's instances went.
pub mod refresh {
    use serde::Deserialize;

    use crate::error::Error;
    use crate::events::Envelope;

    pub const STARTED: &str = "EC2 Auto Scaling Instance Refresh Started";
    pub const CHECKPOINT_REACHED: &str = "EC2 Auto Scaling Instance Refresh Checkpoint Reached";
    pub const SUCCEEDED: &str = "EC2 Auto Scaling Instance Refresh Succeeded";
    pub const FAILED: &str = "EC2 Auto Scaling Instance Refresh Failed";
    pub const CANCELLED: &str = "EC2 Auto Scaling Instance Refresh Cancelled";
    pub const ROLLBACK_STARTED: &str = "EC2 Auto Scaling Instance Refresh Rollback Started";
    pub const ROLLBACK_SUCCEEDED: &str = "EC2 Auto Scaling Instance Refresh Rollback Succeeded";
    pub const ROLLBACK_FAILED: &str = "EC2 Auto Scaling Instance Refresh Rollback Failed";

    /// Every instance refresh detail-type, for routing.
    pub const ALL: [&str; 8] = [
        STARTED,
        CHECKPOINT_REACHED,
        SUCCEEDED,
        FAILED,
        CANCELLED,
        ROLLBACK_STARTED,
        ROLLBACK_SUCCEEDED,
        ROLLBACK_FAILED,
    ];

    #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Phase {
        Started,
        CheckpointReached,
        Succeeded,
        Failed,
        Cancelled,
        RollbackStarted,
        RollbackSucceeded,
        RollbackFailed,
    }

    impl Phase {
        pub fn of(detail_type: &str) -> Option<Self> {
            Some(match detail_type {
                STARTED => Phase::Started,
                CHECKPOINT_REACHED => Phase::CheckpointReached,
                SUCCEEDED => Phase::Succeeded,
                FAILED => Phase::Failed,
                CANCELLED => Phase::Cancelled,
                ROLLBACK_STARTED => Phase::RollbackStarted,
                ROLLBACK_SUCCEEDED => Phase::RollbackSucceeded,
                ROLLBACK_FAILED => Phase::RollbackFailed,
                _ => return None,
            })
        }

        /// Whether the refresh is over (no further event follows for it).
        pub fn is_final(self) -> bool {
            matches!(
                self,
                Phase::Succeeded
                    | Phase::Failed
                    | Phase::Cancelled
                    | Phase::RollbackSucceeded
                    | Phase::RollbackFailed
            )
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RefreshEvent {
        pub phase: Phase,
        pub group: String,
        pub refresh_id: String,
    }

    impl RefreshEvent {
        pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Detail {
                instance_refresh_id: String,
                auto_scaling_group_name: String,
            }
            let phase = Phase::of(&event.detail_type).ok_or_else(|| {
                Error::BadEvent(format!(
                    "{:?} is not an instance refresh event",
                    event.detail_type
                ))
            })?;
            let d: Detail = event.detail_as()?;
            if d.instance_refresh_id.is_empty() || d.auto_scaling_group_name.is_empty() {
                return Err(Error::BadEvent(
                    "instance refresh event without a refresh id or group name".into(),
                ));
            }
            Ok(RefreshEvent {
                phase,
                group: d.auto_scaling_group_name,
                refresh_id: d.instance_refresh_id,
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        use crate::testing::fixture;

        #[test]
        fn refresh_outcome_fixtures_parse() {
            let e = Envelope::parse(fixture("ami-instance-refresh-succeeded.json")).unwrap();
            let r = RefreshEvent::from_envelope(&e).unwrap();
            assert_eq!(r.phase, Phase::Succeeded);
            assert_eq!(r.group, "my-asg");
            assert!(r.phase.is_final());
            let e = Envelope::parse(fixture("ami-instance-refresh-checkpoint.json")).unwrap();
            assert!(!RefreshEvent::from_envelope(&e).unwrap().phase.is_final());
        }

        #[test]
        fn a_refresh_event_without_its_ids_is_a_bad_event() {
            let mut v = fixture("ami-instance-refresh-failed.json");
            v["detail"] = json!({"AutoScalingGroupName": "my-asg"});
            let e = Envelope::parse(v).unwrap();
            assert!(matches!(
                RefreshEvent::from_envelope(&e),
                Err(Error::BadEvent(_))
            ));
        }
    }
}
