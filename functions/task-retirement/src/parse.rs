//! Turns an event into what task-retirement should look at. An ECS task retirement, an
//! EC2 retirement or maintenance notice and (opted in) a rebalance recommendation all
//! become one [`Retirement`]: resources that AWS takes away at a known time, or at any
//! moment when there is no schedule.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::events::ec2::{self, InstanceWarning};
use shared::events::health::{self, HealthEvent};
use shared::events::Envelope;
use shared::Error;

/// EC2 scheduled events that take an instance away (retire, stop or reboot it).
pub const EC2_RETIREMENT_CODES: [&str; 6] = [
    "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
    "AWS_EC2_INSTANCE_STOP_SCHEDULED",
    "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
    "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED",
    "AWS_EC2_INSTANCE_RETIREMENT_EXPEDITED",
];

/// `AWS_ECS_TASK_PATCHING_RETIREMENT` and the other ECS task retirement codes.
pub fn is_ecs_retirement(code: &str) -> bool {
    code.starts_with("AWS_ECS_") && code.contains("RETIREMENT")
}

/// Something AWS will retire, as named in the event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A task by ARN; the cluster is in the ARN unless it is the old short format.
    Task {
        cluster: Option<String>,
        arn: String,
    },
    Service {
        cluster: String,
        service: String,
    },
    /// A service by the old short ARN (`arn:aws:ecs:REGION:ACCOUNT:service/NAME`), which
    /// does not say its cluster: resolved from the event's other entities or the managed
    /// clusters that have a service of that name.
    ServiceByName {
        service: String,
        arn: String,
    },
    Instance {
        instance_id: String,
    },
}

impl Target {
    /// Reads an ECS entity: a task ARN, a service ARN (long or old short format),
    /// `cluster | service`, `cluster|service` or `cluster/service`.
    pub fn ecs(value: &str) -> Option<Target> {
        if let Some(resource) = arn_resource(value, "ecs") {
            let parts: Vec<&str> = resource.split('/').collect();
            return match parts[..] {
                ["task", cluster, id] if !cluster.is_empty() && !id.is_empty() => {
                    Some(Target::Task {
                        cluster: Some(cluster.to_string()),
                        arn: value.to_string(),
                    })
                }
                ["task", id] if !id.is_empty() => Some(Target::Task {
                    cluster: None,
                    arn: value.to_string(),
                }),
                ["service", cluster, service] => service_target(cluster, service),
                ["service", service] if valid_name(service) => Some(Target::ServiceByName {
                    service: service.to_string(),
                    arn: value.to_string(),
                }),
                _ => None,
            };
        }
        // AWS's notices write `cluster | service` (its own health tooling splits on
        // `" | "`); `cluster|service` and `cluster/service` are read the same way.
        let (cluster, service) = value.split_once('|').or_else(|| value.split_once('/'))?;
        service_target(cluster.trim(), service.trim())
    }

    /// Reads an EC2 entity: an instance id or an instance ARN.
    pub fn ec2(value: &str) -> Option<Target> {
        let id = match arn_resource(value, "ec2") {
            Some(resource) => resource.strip_prefix("instance/")?,
            None => value,
        };
        let hex = id.strip_prefix("i-")?;
        (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| Target::Instance {
            instance_id: id.to_string(),
        })
    }
}

/// The resource part of `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
fn arn_resource<'a>(value: &'a str, service: &str) -> Option<&'a str> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, s, _, _, resource] if s == service => Some(resource),
        _ => None,
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['|', '/', ':', ' '])
}

fn service_target(cluster: &str, service: &str) -> Option<Target> {
    (valid_name(cluster) && valid_name(service)).then(|| Target::Service {
        cluster: cluster.to_string(),
        service: service.to_string(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    EcsTasks,
    Ec2Instances,
    Rebalance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retirement {
    pub source: Source,
    /// The Health event's ARN (stable across updates), or the rebalance event's id.
    pub event_arn: String,
    pub code: String,
    /// When AWS retires the resources; `None` when there is no schedule (a rebalance
    /// recommendation: the instance may go at any moment).
    pub start_time: Option<DateTime<Utc>>,
    pub last_updated: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub targets: Vec<Target>,
    /// Entities that are neither a task, a service nor an instance (`UNKNOWN`, ...).
    pub unrecognized: Vec<String>,
}

/// What a retirement waiting for the maintenance window carries from one look to the
/// next, inside the event it sends back to its queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferral {
    /// How many times the retirement has been put off already.
    pub deferrals: u32,
    pub first_deferred_at: Option<DateTime<Utc>>,
    /// How many of those looks waited for the disruption budget (the first is notified).
    #[serde(default)]
    pub budget_waits: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Retire {
        retirement: Retirement,
        deferral: Deferral,
    },
    /// AWS closed the event (done or cancelled): reported, not acted on.
    Closed(Retirement),
    /// A Health event of another kind: reported as ignored.
    Ignore(String),
    /// A rebalance recommendation while `DRAIN_ON_REBALANCE` is off: logged only, since
    /// the deployed rule delivers every one of them whatever the setting.
    OptedOut(String),
}

impl Intent {
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Retire { retirement, .. } => match retirement.source {
                Source::EcsTasks => "ecs-task-retirement",
                Source::Ec2Instances => "ec2-retirement",
                Source::Rebalance => "rebalance-recommendation",
            },
            Intent::Closed(_) => "retirement-closed",
            Intent::Ignore(_) | Intent::OptedOut(_) => "ignored",
        }
    }
}

pub fn intent(event: &Envelope, drain_on_rebalance: bool) -> Result<Intent, Error> {
    match (event.source.as_str(), event.detail_type.as_str()) {
        (health::SOURCE, health::DETAIL_TYPE) => from_health(event),
        ("aws.ec2", ec2::REBALANCE_RECOMMENDATION) => {
            let warning = InstanceWarning::from_envelope(event)?;
            if !drain_on_rebalance {
                return Ok(Intent::OptedOut(format!(
                    "rebalance recommendation for {} (DRAIN_ON_REBALANCE is false)",
                    warning.instance_id
                )));
            }
            Ok(Intent::Retire {
                retirement: Retirement {
                    source: Source::Rebalance,
                    event_arn: event.id.clone(),
                    code: ec2::REBALANCE_RECOMMENDATION.to_string(),
                    start_time: None,
                    last_updated: Some(event.time),
                    description: None,
                    targets: vec![Target::Instance {
                        instance_id: warning.instance_id,
                    }],
                    unrecognized: vec![],
                },
                deferral: carried(event)?,
            })
        }
        (source, detail_type) => Err(Error::BadEvent(format!(
            "task-retirement does not handle {detail_type:?} events from {source:?}"
        ))),
    }
}

/// A text field of a Health event's `detail`: `None` when absent or null, a [`Error::BadEvent`]
/// naming the field and its value when it is not a string.
fn detail_text<'a>(event: &'a Envelope, field: &str) -> Result<Option<&'a str>, Error> {
    match event.detail.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::BadEvent(format!(
            "AWS Health event field detail.{field} is {}, not a string",
            shared::notify::escape(&other.to_string(), 200)
        ))),
    }
}

fn required_text<'a>(event: &'a Envelope, field: &str) -> Result<&'a str, Error> {
    detail_text(event, field)?.ok_or_else(|| {
        Error::BadEvent(format!(
            "AWS Health event has no detail.{field} (it is needed to tell what the event is)"
        ))
    })
}

/// Checks the time fields before the event is read as a whole, so a bad one is reported by
/// its name and value rather than by serde's position in the JSON.
fn check_times(event: &Envelope) -> Result<(), Error> {
    let start = required_text(event, "startTime")?;
    for (field, value) in [
        ("startTime", Some(start)),
        ("endTime", detail_text(event, "endTime")?),
        ("lastUpdatedTime", detail_text(event, "lastUpdatedTime")?),
    ] {
        match value {
            Some(v) if !v.trim().is_empty() && health::parse_time(v).is_none() => {
                return Err(Error::BadEvent(format!(
                    "AWS Health event field detail.{field} is {:?}, neither an RFC 1123 nor an ISO 8601 time",
                    shared::notify::escape(v, 200)
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn from_health(event: &Envelope) -> Result<Intent, Error> {
    // Classified first, on the three fields that say what the event is: an event this
    // function skips must never be dead-lettered by a field it does not need.
    let service = required_text(event, "service")?;
    let code = required_text(event, "eventTypeCode")?;
    let category = detail_text(event, "eventTypeCategory")?.unwrap_or_default();
    let (source, read): (Source, fn(&str) -> Option<Target>) = if service
        .eq_ignore_ascii_case("ECS")
        && is_ecs_retirement(code)
    {
        (Source::EcsTasks, Target::ecs)
    } else if service.eq_ignore_ascii_case("EC2") && EC2_RETIREMENT_CODES.contains(&code) {
        (Source::Ec2Instances, Target::ec2)
    } else {
        return Ok(Intent::Ignore(format!(
                "AWS Health event {code} of service {service} is not a retirement this function handles"
            )));
    };
    if category != health::SCHEDULED_CHANGE {
        return Ok(Intent::Ignore(format!(
            "AWS Health event {code} has category {category:?}, not {:?}",
            health::SCHEDULED_CHANGE
        )));
    }
    let closed =
        detail_text(event, "statusCode")?.is_some_and(|s| s.eq_ignore_ascii_case("closed"));
    if closed && check_times(event).is_err() {
        // A closed notice is only reported: its times do not matter.
        let mut without_times = event.clone();
        if let Some(d) = without_times.detail.as_object_mut() {
            d.insert(
                "startTime".into(),
                serde_json::json!("Thu, 01 Jan 1970 00:00:00 GMT"),
            );
            d.remove("endTime");
            d.remove("lastUpdatedTime");
        }
        return from_health_checked(&without_times, source, read).map(|i| match i {
            Intent::Closed(mut r) => {
                r.start_time = None;
                r.last_updated = None;
                Intent::Closed(r)
            }
            other => other,
        });
    }
    check_times(event)?;
    from_health_checked(event, source, read)
}

/// Checks the structured fields a retirement reads, so a bad one is named with its value
/// (serde would say only "invalid type", without the field).
fn check_structure(event: &Envelope) -> Result<(), Error> {
    let bad = |field: String, value: &serde_json::Value, expected: &str| {
        Error::BadEvent(format!(
            "AWS Health event field detail.{field} is {}, not {expected}",
            shared::notify::escape(&value.to_string(), 200)
        ))
    };
    detail_text(event, "eventArn")?;
    for field in ["affectedEntities", "eventDescription"] {
        match event.detail.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(items)) if field == "affectedEntities" => {
                for (i, item) in items.iter().enumerate() {
                    match item.get("entityValue") {
                        Some(serde_json::Value::String(_)) => {}
                        Some(v) => {
                            return Err(bad(format!("{field}[{i}].entityValue"), v, "a string"))
                        }
                        None => {
                            return Err(bad(
                                format!("{field}[{i}]"),
                                item,
                                "an entity with an entityValue",
                            ))
                        }
                    }
                }
            }
            Some(serde_json::Value::Array(_)) => {}
            Some(other) => return Err(bad(field.to_string(), other, "a list")),
        }
    }
    Ok(())
}

fn from_health_checked(
    event: &Envelope,
    source: Source,
    read: fn(&str) -> Option<Target>,
) -> Result<Intent, Error> {
    check_structure(event)?;
    let h = HealthEvent::from_envelope(event)?;
    let mut targets: Vec<Target> = vec![];
    let mut unrecognized = vec![];
    for value in h.entity_values(event) {
        match read(value) {
            Some(t) if !targets.contains(&t) => targets.push(t),
            Some(_) => {}
            None => unrecognized.push(value.to_string()),
        }
    }
    let retirement = Retirement {
        source,
        event_arn: h.event_arn.clone(),
        code: h.event_type_code.clone(),
        start_time: Some(h.start_time),
        last_updated: h.last_updated_time,
        description: h.description().map(str::to_string),
        targets,
        unrecognized,
    };
    if h.is_closed() {
        return Ok(Intent::Closed(retirement));
    }
    Ok(Intent::Retire {
        retirement,
        deferral: carried(event)?,
    })
}

fn carried(event: &Envelope) -> Result<Deferral, Error> {
    match &event.carry {
        Some(c) => serde_json::from_value(c.clone())
            .map_err(|e| Error::BadEvent(format!("carried deferral does not parse: {e}"))),
        None => Ok(Deferral::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::testing::envelope as fixture;

    fn service(cluster: &str, service: &str) -> Target {
        Target::Service {
            cluster: cluster.into(),
            service: service.into(),
        }
    }

    #[test]
    fn ecs_entities_are_read_in_all_three_forms_and_as_arns() {
        assert_eq!(Target::ecs("prod|web"), Some(service("prod", "web")));
        assert_eq!(Target::ecs("prod/web"), Some(service("prod", "web")));
        assert_eq!(Target::ecs("prod | web"), Some(service("prod", "web")));
        assert_eq!(Target::ecs(" prod |web "), Some(service("prod", "web")));
        assert_eq!(Target::ecs("prod / web"), Some(service("prod", "web")));
        assert_eq!(
            Target::ecs("arn:aws:ecs:us-east-1:1:service/prod/web"),
            Some(service("prod", "web"))
        );
        assert_eq!(
            Target::ecs("arn:aws:ecs:us-east-1:1:task/prod/abc"),
            Some(Target::Task {
                cluster: Some("prod".into()),
                arn: "arn:aws:ecs:us-east-1:1:task/prod/abc".into()
            })
        );
        assert_eq!(
            Target::ecs("arn:aws:ecs:us-east-1:1:task/abc"),
            Some(Target::Task {
                cluster: None,
                arn: "arn:aws:ecs:us-east-1:1:task/abc".into()
            })
        );
        assert_eq!(
            Target::ecs("arn:aws:ecs:us-east-1:1:service/web"),
            Some(Target::ServiceByName {
                service: "web".into(),
                arn: "arn:aws:ecs:us-east-1:1:service/web".into()
            })
        );
        for junk in [
            "arn:aws:ecs:r:1:service/",
            "arn:aws:ecs:r:1:service/a/b/c",
            "UNKNOWN",
            "",
            "|web",
            "prod|",
            "a|b|c",
            " | web",
            "prod | my web",
            "arn:aws:ecs:r:1:cluster/prod",
        ] {
            assert_eq!(Target::ecs(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn ec2_entities_are_instance_ids_or_instance_arns() {
        let i = Target::Instance {
            instance_id: "i-0abc12".into(),
        };
        assert_eq!(Target::ec2("i-0abc12"), Some(i.clone()));
        assert_eq!(
            Target::ec2("arn:aws:ec2:us-east-1:1:instance/i-0abc12"),
            Some(i)
        );
        assert_eq!(Target::ec2("i-"), None);
        assert_eq!(Target::ec2("vol-0abc"), None);
        assert_eq!(Target::ec2("i-xyz"), None);
    }

    #[test]
    fn an_ecs_patching_notice_names_the_service_and_the_task_once_each() {
        let Intent::Retire {
            retirement,
            deferral,
        } = intent(&fixture("retirement-ecs-task-patching.json"), false).unwrap()
        else {
            panic!()
        };
        assert_eq!(retirement.source, Source::EcsTasks);
        assert_eq!(deferral, Deferral::default());
        assert_eq!(retirement.targets.len(), 2);
        assert_eq!(
            retirement.targets[0],
            service("prod-cluster", "web-service")
        );
        assert!(
            matches!(&retirement.targets[1], Target::Task { cluster: Some(c), .. } if c == "prod-cluster")
        );
        assert_eq!(
            retirement.start_time.unwrap().to_rfc3339(),
            "2023-08-16T23:18:51+00:00"
        );
        assert!(retirement.unrecognized.is_empty());
    }

    #[test]
    fn an_ec2_retirement_names_its_instance() {
        let i = intent(&fixture("retirement-ec2-instance-scheduled.json"), false).unwrap();
        assert_eq!(i.kind(), "ec2-retirement");
        let Intent::Retire { retirement, .. } = i else {
            panic!()
        };
        assert_eq!(
            retirement.targets,
            [Target::Instance {
                instance_id: "i-0abcd1111abcd1111".into()
            }]
        );
    }

    #[test]
    fn a_closed_notice_is_closed_and_other_codes_are_ignored() {
        let mut e = fixture("retirement-ec2-instance-scheduled.json");
        e.detail["statusCode"] = json!("closed");
        assert!(matches!(intent(&e, false).unwrap(), Intent::Closed(_)));
        let mut e = fixture("retirement-ec2-instance-scheduled.json");
        e.detail["eventTypeCode"] = json!("AWS_EC2_OPERATIONAL_ISSUE");
        assert!(matches!(intent(&e, false).unwrap(), Intent::Ignore(_)));
        let mut e = fixture("retirement-ecs-task-patching.json");
        e.detail["service"] = json!("RDS");
        assert!(matches!(intent(&e, false).unwrap(), Intent::Ignore(_)));
        let mut e = fixture("retirement-ecs-task-patching.json");
        e.detail["eventTypeCategory"] = json!("issue");
        assert!(matches!(intent(&e, false).unwrap(), Intent::Ignore(_)));
    }

    #[test]
    fn rebalance_recommendations_count_only_when_opted_in() {
        let e = fixture("retirement-ec2-rebalance-recommendation.json");
        assert!(matches!(intent(&e, false).unwrap(), Intent::OptedOut(_)));
        let Intent::Retire { retirement, .. } = intent(&e, true).unwrap() else {
            panic!()
        };
        assert_eq!(retirement.source, Source::Rebalance);
        assert_eq!(retirement.start_time, None);
    }

    #[test]
    fn a_carried_deferral_is_read_back_and_a_broken_one_is_a_bad_event() {
        let mut e = fixture("retirement-ecs-task-patching.json");
        e.carry = Some(json!({"deferrals": 3, "first_deferred_at": "2023-08-10T00:00:00Z"}));
        let Intent::Retire { deferral, .. } = intent(&e, false).unwrap() else {
            panic!()
        };
        assert_eq!(deferral.deferrals, 3);
        e.carry = Some(json!({"deferrals": "many"}));
        assert!(matches!(intent(&e, false), Err(Error::BadEvent(_))));
    }

    #[test]
    fn unrelated_events_and_malformed_health_events_are_bad_events() {
        let mut e = fixture("retirement-ec2-rebalance-recommendation.json");
        e.detail_type = "EC2 Instance State-change Notification".into();
        assert!(matches!(intent(&e, true), Err(Error::BadEvent(_))));
        let mut e = fixture("retirement-ecs-task-patching.json");
        e.detail["startTime"] = json!(12);
        assert!(matches!(intent(&e, true), Err(Error::BadEvent(_))));
    }

    #[test]
    fn an_event_is_classified_before_its_times_are_read() {
        // Skipped events: a bad startTime (a field they do not need) does not matter.
        for (field, value) in [
            ("eventTypeCode", "AWS_EC2_OPERATIONAL_ISSUE"),
            ("service", "RDS"),
            ("eventTypeCategory", "issue"),
        ] {
            let mut e = fixture("retirement-ecs-task-patching.json");
            e.detail["startTime"] = json!("soon");
            e.detail["lastUpdatedTime"] = json!(12);
            e.detail[field] = json!(value);
            assert!(
                matches!(intent(&e, false), Ok(Intent::Ignore(_))),
                "{field}"
            );
        }
        let mut e = fixture("retirement-ecs-task-patching.json");
        e.detail["startTime"] = json!("soon");
        e.detail["statusCode"] = json!("closed");
        let Ok(Intent::Closed(r)) = intent(&e, false) else {
            panic!()
        };
        assert_eq!(r.start_time, None);
        assert_eq!(r.targets.len(), 2);
    }

    #[test]
    fn a_field_that_fails_is_named_with_its_value() {
        let bad = |field: &str, value: serde_json::Value| {
            let mut e = fixture("retirement-ecs-task-patching.json");
            e.detail[field] = value;
            match intent(&e, false) {
                Err(Error::BadEvent(m)) => m,
                other => panic!("{field}: {other:?}"),
            }
        };
        let m = bad("startTime", json!("soon"));
        assert!(
            m.contains("detail.startTime") && m.contains("\"soon\""),
            "{m}"
        );
        let m = bad("lastUpdatedTime", json!("yesterday"));
        assert!(
            m.contains("detail.lastUpdatedTime") && m.contains("yesterday"),
            "{m}"
        );
        let m = bad("startTime", json!(12));
        assert!(m.contains("detail.startTime") && m.contains("12"), "{m}");
        let m = bad("eventTypeCode", json!(["x"]));
        assert!(m.contains("detail.eventTypeCode"), "{m}");
        let m = bad("service", serde_json::Value::Null);
        assert!(m.contains("detail.service"), "{m}");
        let m = bad("affectedEntities", json!("prod-web"));
        assert!(
            m.contains("detail.affectedEntities") && m.contains("prod-web"),
            "{m}"
        );
        let m = bad("affectedEntities", json!([{"entityValue": 7}]));
        assert!(
            m.contains("detail.affectedEntities[0].entityValue") && m.contains('7'),
            "{m}"
        );
        let m = bad("eventArn", json!(["x"]));
        assert!(m.contains("detail.eventArn"), "{m}");
    }

    #[test]
    fn any_payload_is_an_intent_or_a_bad_event_never_a_panic() {
        use shared::testing::strategies;
        strategies::check(
            "task-retirement parse::intent",
            strategies::payloads(),
            |v| {
                if let Ok(e) = Envelope::parse(v) {
                    strategies::assert_ok_or_bad_event("intent", &intent(&e, false));
                    strategies::assert_ok_or_bad_event("intent (rebalance)", &intent(&e, true));
                }
            },
        );
    }
}
