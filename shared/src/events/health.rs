//! AWS Health events (scheduled changes: ECS task retirement, EC2 retirement/maintenance).
//!
//! AWS writes the times in `detail` in RFC 1123 (`Wed, 16 Aug 2023 23:18:51 GMT`), not
//! in the ISO 8601 of the envelope; both are accepted so a hand-written or re-encoded
//! event parses too. `affectedEntities[].tags` is an object of arbitrary values (the
//! reason `aws_lambda_events`' Health type fails on real payloads), so it is read
//! permissively: a tag we cannot make sense of is dropped, never an error.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Envelope;
use crate::error::Error;

pub const SOURCE: &str = "aws.health";
pub const DETAIL_TYPE: &str = "AWS Health Event";
pub const SCHEDULED_CHANGE: &str = "scheduledChange";

/// One AWS Health event as delivered to EventBridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthEvent {
    /// Identifies the event across updates: an updated notice keeps its ARN and gets a
    /// new `lastUpdatedTime`.
    pub event_arn: String,
    /// `ECS`, `EC2`, ...
    pub service: String,
    pub event_type_code: String,
    /// `scheduledChange`, `issue`, `accountNotification`, `investigation`.
    pub event_type_category: String,
    #[serde(default)]
    pub event_scope_code: Option<String>,
    /// When the scheduled change (the retirement) happens.
    #[serde(deserialize_with = "health_time")]
    pub start_time: DateTime<Utc>,
    #[serde(default, deserialize_with = "optional_health_time")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_health_time")]
    pub last_updated_time: Option<DateTime<Utc>>,
    /// `upcoming`, `open` or `closed`.
    #[serde(default)]
    pub status_code: String,
    #[serde(default)]
    pub event_description: Vec<Description>,
    #[serde(default)]
    pub affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub latest_description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    /// A task ARN, `cluster|service`, an instance id, ... depending on the service.
    pub entity_value: String,
    #[serde(default, deserialize_with = "permissive_tags")]
    pub tags: BTreeMap<String, String>,
}

impl HealthEvent {
    pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
        if event.detail_type != DETAIL_TYPE {
            return Err(Error::BadEvent(format!(
                "expected an {DETAIL_TYPE:?}, got {:?}",
                event.detail_type
            )));
        }
        let health: HealthEvent = event.detail_as()?;
        if health.event_arn.trim().is_empty() {
            return Err(Error::BadEvent(
                "AWS Health event without an eventArn".into(),
            ));
        }
        Ok(health)
    }

    /// AWS has closed the event: the change happened or was cancelled.
    pub fn is_closed(&self) -> bool {
        self.status_code.eq_ignore_ascii_case("closed")
    }

    /// The English description AWS wrote, or the first one there is.
    pub fn description(&self) -> Option<&str> {
        self.event_description
            .iter()
            .find(|d| d.language.starts_with("en"))
            .or(self.event_description.first())
            .map(|d| d.latest_description.as_str())
            .filter(|d| !d.is_empty())
    }

    /// Every affected entity the event names, from `affectedEntities` and the envelope's
    /// `resources` (AWS fills one, the other or both), without repeats and in order.
    pub fn entity_values<'a>(&'a self, envelope: &'a Envelope) -> Vec<&'a str> {
        let mut seen: Vec<&str> = vec![];
        let all = self
            .affected_entities
            .iter()
            .map(|e| e.entity_value.as_str())
            .chain(envelope.resources.iter().map(String::as_str));
        for value in all.map(str::trim).filter(|v| !v.is_empty()) {
            if !seen.contains(&value) {
                seen.push(value);
            }
        }
        seen
    }
}

/// Parses an AWS Health time: RFC 1123 as AWS sends it, or ISO 8601.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn health_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?} is neither an RFC 1123 nor an ISO 8601 time"
        ))
    })
}

fn optional_health_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => health_time(serde::de::value::StringDeserializer::new(t)).map(Some),
    }
}

/// Tags as an object (`{"stage": "prod"}`) or as a list of `{key, value}` pairs; values
/// that are not strings are kept as their JSON text, anything else is dropped.
fn permissive_tags<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
    let tags = match Value::deserialize(d)? {
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let key = item.get("key").or_else(|| item.get("Key"))?.as_str()?;
                let value = item.get("value").or_else(|| item.get("Value"));
                Some((key.to_string(), value.and_then(text).unwrap_or_default()))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn envelope(detail: Value, resources: Vec<&str>) -> Envelope {
        Envelope {
            resources: resources.into_iter().map(str::to_string).collect(),
            ..crate::testing::event("AWS Health Event", "aws.health", detail)
        }
    }

    fn detail() -> Value {
        json!({
            "eventArn": "arn:aws:health:us-east-1::event/ECS/AWS_ECS_TASK_PATCHING_RETIREMENT/AWS_ECS_TASK_PATCHING_RETIREMENT_abc",
            "service": "ECS",
            "eventTypeCode": "AWS_ECS_TASK_PATCHING_RETIREMENT",
            "eventTypeCategory": "scheduledChange",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "startTime": "Wed, 16 Aug 2023 23:18:51 GMT",
            "statusCode": "upcoming",
            "eventDescription": [{"language": "en_US", "latestDescription": "Tasks retire."}],
            "affectedEntities": [
                {"entityValue": "prod|web", "tags": {"team": "a", "n": 3, "none": null}},
                {"entityValue": "arn:aws:ecs:us-east-1:123456789012:task/prod/0123", "tags": [{"key": "k", "value": "v"}]},
                {"entityValue": "i-0abc", "tags": "not tags"}
            ]
        })
    }

    #[test]
    fn rfc_1123_start_times_parse_and_iso_8601_is_accepted_too() {
        let e = HealthEvent::from_envelope(&envelope(detail(), vec![])).unwrap();
        assert_eq!(
            e.start_time,
            Utc.with_ymd_and_hms(2023, 8, 16, 23, 18, 51).unwrap()
        );
        let mut d = detail();
        d["startTime"] = json!("2023-08-16T23:18:51Z");
        d["lastUpdatedTime"] = json!("Thu, 10 Aug 2023 08:00:00 GMT");
        let e = HealthEvent::from_envelope(&envelope(d, vec![])).unwrap();
        assert_eq!(
            e.start_time,
            Utc.with_ymd_and_hms(2023, 8, 16, 23, 18, 51).unwrap()
        );
        assert_eq!(
            e.last_updated_time,
            Some(Utc.with_ymd_and_hms(2023, 8, 10, 8, 0, 0).unwrap())
        );
        assert_eq!(e.end_time, None);
    }

    #[test]
    fn entity_tags_of_any_shape_do_not_break_parsing() {
        let e = HealthEvent::from_envelope(&envelope(detail(), vec![])).unwrap();
        let tags = &e.affected_entities[0].tags;
        assert_eq!(tags["team"], "a");
        assert_eq!(tags["n"], "3");
        assert!(!tags.contains_key("none"));
        assert_eq!(e.affected_entities[1].tags["k"], "v");
        assert!(e.affected_entities[2].tags.is_empty());
    }

    #[test]
    fn entities_come_from_affected_entities_and_resources_without_repeats() {
        let env = envelope(detail(), vec!["prod|web", "prod/api", " "]);
        let e = HealthEvent::from_envelope(&env).unwrap();
        assert_eq!(
            e.entity_values(&env),
            [
                "prod|web",
                "arn:aws:ecs:us-east-1:123456789012:task/prod/0123",
                "i-0abc",
                "prod/api"
            ]
        );
    }

    #[test]
    fn a_bad_start_time_or_missing_arn_is_a_bad_event() {
        let mut d = detail();
        d["startTime"] = json!("next Tuesday");
        let err = HealthEvent::from_envelope(&envelope(d, vec![])).unwrap_err();
        assert!(matches!(&err, Error::BadEvent(m) if m.contains("next Tuesday")));
        let mut d = detail();
        d["eventArn"] = json!("");
        assert!(matches!(
            HealthEvent::from_envelope(&envelope(d, vec![])),
            Err(Error::BadEvent(_))
        ));
        let mut d = detail();
        d.as_object_mut().unwrap().remove("startTime");
        assert!(matches!(
            HealthEvent::from_envelope(&envelope(d, vec![])),
            Err(Error::BadEvent(_))
        ));
    }

    #[test]
    fn closed_status_and_description_are_read() {
        let mut d = detail();
        d["statusCode"] = json!("closed");
        let e = HealthEvent::from_envelope(&envelope(d, vec![])).unwrap();
        assert!(e.is_closed());
        assert_eq!(e.description(), Some("Tasks retire."));
    }
}
