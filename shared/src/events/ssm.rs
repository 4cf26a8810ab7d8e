//! SSM Parameter Store change events, and the SNS notification AWS publishes when it
//! releases new ECS-optimized AMIs (the other way a parameter's new value is announced).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::Envelope;
use crate::error::Error;

pub const PARAMETER_CHANGE: &str = "Parameter Store Change";
/// Our detail-type for an ECS-optimized AMI release notification that arrived via SNS.
pub const ECS_AMI_RELEASE: &str = "ECS-Optimized AMI Update";
/// The public topic AWS publishes ECS-optimized AMI releases to (us-east-1).
pub const ECS_AMI_TOPIC_SUFFIX: &str = ":ecs-optimized-amazon-ami-update";

/// A parameter was created, updated, labelled or deleted. The event carries no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterChange {
    pub name: String,
    /// Create, Update, Delete, LabelParameterVersion.
    pub operation: String,
    pub parameter_type: Option<String>,
}

impl ParameterChange {
    /// Whether the parameter may now hold a new value.
    pub fn may_change_value(&self) -> bool {
        matches!(
            self.operation.as_str(),
            "Create" | "Update" | "LabelParameterVersion"
        )
    }

    pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Detail {
            name: String,
            operation: String,
            #[serde(rename = "type", default)]
            parameter_type: Option<String>,
        }
        let d: Detail = event.detail_as()?;
        if d.name.trim().is_empty() {
            return Err(Error::BadEvent("parameter change without a name".into()));
        }
        Ok(ParameterChange {
            name: d.name,
            operation: d.operation,
            parameter_type: d.parameter_type,
        })
    }
}

/// What an ECS-optimized AMI release notification says, as far as we read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmiRelease {
    pub topic_arn: String,
    /// Release versions named in the message (`2023.0.20240702`, ...), if it parses.
    pub releases: Vec<String>,
}

impl AmiRelease {
    pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
        let topic_arn = event
            .detail
            .get("TopicArn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        // The message is AWS's own JSON; we only need it to say *that* a release
        // happened, so an unexpected shape still counts as a notification.
        let releases = event
            .detail
            .get("Message")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|m| m.get("ECSAmis").cloned())
            .and_then(|a| a.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.get("ReleaseVersion").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        Ok(AmiRelease {
            topic_arn,
            releases,
        })
    }
}

/// An SNS-triggered invocation (`{"Records":[{"EventSource":"aws:sns","Sns":{...}}]}`)
/// as envelopes, one per record: `None` when the payload is not SNS-shaped, so the
/// caller can hand it to [`crate::runtime::deliver`] (which reads `Records` as SQS).
pub fn sns_records_to_envelopes(payload: &Value) -> Option<Result<Vec<Envelope>, Error>> {
    let records = payload.get("Records")?.as_array()?;
    let is_sns = |r: &Value| {
        r.get("EventSource").and_then(Value::as_str) == Some("aws:sns") || r.get("Sns").is_some()
    };
    if records.is_empty() || !records.iter().all(is_sns) {
        return None;
    }
    Some(records.iter().map(sns_record_to_envelope).collect())
}

fn sns_record_to_envelope(record: &Value) -> Result<Envelope, Error> {
    let sns = record
        .get("Sns")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::BadEvent("SNS record without an Sns object".into()))?;
    let str_of = |k: &str| sns.get(k).and_then(Value::as_str).map(str::to_string);
    let id = str_of("MessageId")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Error::BadEvent("SNS record without a MessageId".into()))?;
    let topic = str_of("TopicArn").unwrap_or_default();
    let time = str_of("Timestamp")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| Error::BadEvent("SNS record without a valid Timestamp".into()))?;
    Ok(Envelope {
        id,
        detail_type: ECS_AMI_RELEASE.to_string(),
        source: "aws.sns".into(),
        // AWS publishes the announcement for every region from its own topic in
        // us-east-1: the topic's account and region are not the event's, and stamping
        // them would make every other region skip it as foreign.
        account: String::new(),
        region: String::new(),
        time,
        resources: vec![topic.clone()],
        detail: json!({
            "TopicArn": topic,
            "Subject": str_of("Subject"),
            "Message": str_of("Message").unwrap_or_default(),
        }),
        carry: None,
        other: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::fixture;

    #[test]
    fn parameter_change_fixture_parses() {
        let e = Envelope::parse(fixture("ami-parameter-store-change.json")).unwrap();
        let c = ParameterChange::from_envelope(&e).unwrap();
        assert_eq!(c.name, "/platform/ecs/ami");
        assert_eq!(c.operation, "Update");
        assert!(c.may_change_value());
        let mut v = fixture("ami-parameter-store-change.json");
        v["detail"]["operation"] = json!("Delete");
        let e = Envelope::parse(v).unwrap();
        assert!(!ParameterChange::from_envelope(&e)
            .unwrap()
            .may_change_value());
    }

    #[test]
    fn a_parameter_change_without_a_name_is_a_bad_event() {
        let mut v = fixture("ami-parameter-store-change.json");
        v["detail"] = json!({"operation": "Update"});
        let e = Envelope::parse(v).unwrap();
        assert!(matches!(
            ParameterChange::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
    }

    #[test]
    fn the_ecs_ami_sns_notification_becomes_one_envelope_per_record() {
        let envelopes = sns_records_to_envelopes(&fixture("ami-ecs-optimized-sns.json"))
            .unwrap()
            .unwrap();
        assert_eq!(envelopes.len(), 1);
        let e = &envelopes[0];
        assert_eq!(e.detail_type, ECS_AMI_RELEASE);
        assert!(e.resources[0].ends_with(ECS_AMI_TOPIC_SUFFIX));
        // The topic is AWS's, in us-east-1, whatever region subscribes: not the event's.
        assert_eq!((e.account.as_str(), e.region.as_str()), ("", ""));
        let release = AmiRelease::from_envelope(e).unwrap();
        assert_eq!(release.releases, ["2023.0.20240702"]);
    }

    #[test]
    fn sqs_batches_and_direct_events_are_not_sns() {
        assert!(sns_records_to_envelopes(
            &json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
        )
        .is_none());
        assert!(sns_records_to_envelopes(&json!({"detail-type": "x"})).is_none());
    }

    #[test]
    fn a_broken_sns_record_is_a_bad_event() {
        let r = sns_records_to_envelopes(&json!({"Records": [{"EventSource": "aws:sns"}]}));
        assert!(matches!(r, Some(Err(Error::BadEvent(_)))));
    }
}
