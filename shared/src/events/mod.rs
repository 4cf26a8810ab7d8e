//! Typed events. Every function receives EventBridge events, either directly or as the
//! bodies of SQS records; [`Envelope`] is the part they all share, and one module per
//! event family turns an envelope's `detail` into a typed value.
//!
//! The types are our own rather than `aws_lambda_events`' because several of those fail
//! on real payloads; every field AWS may omit is optional or defaulted.

pub mod autoscaling;
pub mod ec2;
pub mod guardduty;
pub mod health;
pub mod ssm;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// The common EventBridge event fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub region: String,
    pub time: DateTime<Utc>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub detail: Value,
    /// State a function attaches when it sends an event back to its own queue to look at
    /// it again later (see `instance-drain`). Absent on events from AWS.
    #[serde(
        rename = "ecs-autopilot",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub carry: Option<Value>,
    /// Fields we do not read (`version`, ...), kept so a re-queued event is the event.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Envelope {
    /// Parses an event from its JSON value: an EventBridge event, or one of the other
    /// shapes the same information arrives in (see [`autoscaling::from_hook_notification`]).
    pub fn parse(value: Value) -> Result<Self, Error> {
        if value.get("detail-type").is_some() {
            return serde_json::from_value(value)
                .map_err(|e| Error::BadEvent(format!("not an EventBridge event: {e}")));
        }
        if let Some(envelope) = autoscaling::from_hook_notification(&value)? {
            return Ok(envelope);
        }
        Err(Error::BadEvent(
            "not an EventBridge event (no detail-type) nor a lifecycle hook notification".into(),
        ))
    }

    pub fn parse_str(body: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| Error::BadEvent(format!("body is not JSON: {e}")))?;
        Self::parse(value)
    }

    /// Deserializes `detail` into `T`, naming the event kind on failure.
    pub fn detail_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.detail.clone()).map_err(|e| {
            Error::BadEvent(format!("{} detail does not parse: {e}", self.detail_type))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let v = json!({"version":"0","id":"1","detail-type":"X","source":"s","account":"1",
            "time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}});
        let e = Envelope::parse(v).unwrap();
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["version"], "0");
        assert!(back.get("ecs-autopilot").is_none());
    }

    #[test]
    fn garbage_is_a_bad_event() {
        assert!(matches!(Envelope::parse_str("{"), Err(Error::BadEvent(_))));
        assert!(matches!(
            Envelope::parse(json!({"a":1})),
            Err(Error::BadEvent(_))
        ));
        assert!(matches!(
            Envelope::parse(json!({"detail-type":"X","id":"1","source":"s","time":"yesterday"})),
            Err(Error::BadEvent(_))
        ));
    }
}
