//! Turns an event into what guardduty-responder should look at: an ECS Runtime
//! Monitoring finding about a task in a named cluster, or nothing.

use shared::events::guardduty::{self, Finding};
use shared::events::Envelope;
use shared::Error;

/// The longest cluster name ECS accepts.
const MAX_CLUSTER_NAME: usize = 255;

/// A runtime threat in an ECS task.
#[derive(Debug, Clone, PartialEq)]
pub struct Threat {
    pub finding: Finding,
    /// The cluster name (matched against the `ecs-autopilot:cluster` group tag).
    pub cluster: String,
    /// What ECS calls use: the cluster ARN when the finding has it, so a finding from
    /// another account (a GuardDuty administrator account sees its members' findings)
    /// can never match a same-named cluster here.
    pub cluster_ref: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Respond(Box<Threat>),
    /// A finding about something other than an ECS task (the rule should not send
    /// these); logged only.
    Ignore(String),
}

impl Intent {
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Respond(_) => "guardduty-finding",
            Intent::Ignore(_) => "ignored",
        }
    }
}

pub fn intent(event: &Envelope) -> Result<Intent, Error> {
    // Only AWS can put events with an `aws.*` source on a bus, so this also keeps
    // forged "findings" from stopping tasks.
    if event.source != guardduty::SOURCE {
        return Err(Error::BadEvent(format!(
            "guardduty-responder handles {:?} events only, got source {:?}",
            guardduty::SOURCE,
            event.source
        )));
    }
    let finding = Finding::from_envelope(event)?;
    if !finding.is_ecs_runtime() {
        return Ok(Intent::Ignore(format!(
            "finding {} is about {:?} ({}), not an ECS Runtime Monitoring finding",
            finding.id,
            finding.resource.resource_type,
            finding
                .service
                .feature_name
                .as_deref()
                .unwrap_or("no feature")
        )));
    }
    let cluster = finding.cluster_name().ok_or_else(|| {
        Error::BadEvent(format!(
            "ECS finding {} names no cluster (resource.ecsClusterDetails.name/arn)",
            finding.id
        ))
    })?;
    let cluster_ref = finding
        .resource
        .ecs_cluster_details
        .as_ref()
        .and_then(|d| d.arn.clone())
        .filter(|a| a.starts_with("arn:"))
        .unwrap_or_else(|| cluster.clone());
    // ECS names a cluster in at most 255 characters (its ARN adds at most ~100): a longer
    // one is not a cluster of ours, and quoting it would not even fit in a notification.
    for (what, value, max) in [
        ("cluster name", &cluster, MAX_CLUSTER_NAME),
        ("cluster ARN", &cluster_ref, MAX_CLUSTER_NAME + 100),
    ] {
        if value.chars().count() > max {
            return Err(Error::BadEvent(format!(
                "ECS finding {} names a {what} of {} characters; ECS allows {max}",
                finding.id,
                value.chars().count()
            )));
        }
    }
    Ok(Intent::Respond(Box::new(Threat {
        finding,
        cluster,
        cluster_ref,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn fixture(name: &str) -> Envelope {
        let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        Envelope::parse_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
    }

    #[test]
    fn an_ecs_runtime_finding_becomes_a_threat_in_its_cluster() {
        let Intent::Respond(t) = intent(&fixture("guardduty-reverse-shell-ec2.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(t.cluster, "prod");
        assert_eq!(
            t.cluster_ref,
            "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
        );
        assert_eq!(t.finding.finding_type, "Execution:Runtime/ReverseShell");
    }

    #[test]
    fn findings_about_other_resources_are_ignored() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["resource"]["resourceType"] = "Instance".into();
        assert!(matches!(intent(&e).unwrap(), Intent::Ignore(_)));
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["service"]["featureName"] = "EbsMalwareProtection".into();
        assert!(matches!(intent(&e).unwrap(), Intent::Ignore(_)));
    }

    #[test]
    fn an_ecs_finding_without_a_cluster_is_a_bad_event() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["resource"]["ecsClusterDetails"] = serde_json::json!({});
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn a_cluster_name_longer_than_ecs_allows_is_a_bad_event() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["resource"]["ecsClusterDetails"]["name"] = "c".repeat(256).into();
        let Err(Error::BadEvent(why)) = intent(&e) else {
            panic!("a 256-character cluster name was accepted")
        };
        assert!(why.contains("256 characters"), "{why}");
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["resource"]["ecsClusterDetails"]["name"] = "c".repeat(255).into();
        assert!(intent(&e).is_ok());
    }

    #[test]
    fn events_from_other_sources_are_bad_events() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.source = "custom.attacker".into();
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail = serde_json::json!("not an object");
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn any_payload_is_an_intent_or_a_bad_event_never_a_panic() {
        use shared::events::fuzz;
        fuzz::check("guardduty-responder parse::intent", fuzz::payloads(), |v| {
            if let Ok(e) = Envelope::parse(v) {
                fuzz::assert_ok_or_bad_event("intent", &intent(&e));
            }
        });
    }
}
