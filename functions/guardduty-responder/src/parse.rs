//! Turns an event into what guardduty-responder should look at: an ECS Runtime
//! Monitoring finding about a task in a named cluster, a Runtime Monitoring finding
//! about an EC2 host, an attack sequence naming ECS resources, or nothing.

use shared::events::guardduty::{self, EcsClusterDetails, EcsTaskDetails, Finding};
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

/// A runtime threat on an EC2 host itself (not in a task).
#[derive(Debug, Clone, PartialEq)]
pub struct HostThreat {
    pub finding: Finding,
    pub instance_id: String,
    /// (name, ARN) when the finding names the host's ECS cluster; otherwise the managed
    /// clusters are searched for the instance.
    pub cluster: Option<(String, String)>,
}

/// An attack sequence: the tasks it names, each as a task threat carrying the
/// sequence's id, type and severity, and the hosts it names.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceThreat {
    pub finding: Finding,
    pub tasks: Vec<Threat>,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Respond(Box<Threat>),
    Host(Box<HostThreat>),
    Sequence(Box<SequenceThreat>),
    /// A finding about something other than an ECS task (the rule should not send
    /// these); logged only.
    Ignore(String),
}

impl Intent {
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Respond(_) => "guardduty-finding",
            Intent::Host(_) => "guardduty-host-finding",
            Intent::Sequence(_) => "guardduty-attack-sequence",
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
    if finding.finding_type.starts_with(guardduty::ATTACK_SEQUENCE) {
        return sequence(finding);
    }
    if finding.is_host_runtime() {
        return host(finding);
    }
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
    let cluster_ref = cluster_ref(&finding, &cluster);
    checked_lengths(&finding, &cluster, &cluster_ref)?;
    Ok(Intent::Respond(Box::new(Threat {
        finding,
        cluster,
        cluster_ref,
    })))
}

/// The cluster ARN when the finding has one, else its name.
fn cluster_ref(finding: &Finding, cluster: &str) -> String {
    finding
        .resource
        .ecs_cluster_details
        .as_ref()
        .and_then(|d| d.arn.clone())
        .filter(|a| a.starts_with("arn:"))
        .unwrap_or_else(|| cluster.to_string())
}

/// ECS names a cluster in at most 255 characters (its ARN adds at most ~100): a longer
/// one is not a cluster of ours, and quoting it would not even fit in a notification.
fn checked_lengths(finding: &Finding, cluster: &str, cluster_ref: &str) -> Result<(), Error> {
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
    Ok(())
}

/// A host finding must name its instance: without it there is nothing to look at.
fn host(finding: Finding) -> Result<Intent, Error> {
    let instance_id = finding.instance_id().map(str::to_string).ok_or_else(|| {
        Error::BadEvent(format!(
            "host finding {} names no EC2 instance (resource.instanceDetails.instanceId)",
            finding.id
        ))
    })?;
    let cluster = match finding.cluster_name() {
        Some(name) => {
            let arn = cluster_ref(&finding, &name);
            checked_lengths(&finding, &name, &arn)?;
            Some((name, arn))
        }
        None => None,
    };
    Ok(Intent::Host(Box::new(HostThreat {
        finding,
        instance_id,
        cluster,
    })))
}

/// An attack sequence becomes one task threat per ECS task it names (the cluster comes
/// from the task ARN) plus the hosts it names; one naming no ECS resource is not ours.
fn sequence(finding: Finding) -> Result<Intent, Error> {
    let Some(seq) = finding.sequence() else {
        return Err(Error::BadEvent(format!(
            "attack sequence finding {} has no service.detection.sequence",
            finding.id
        )));
    };
    if !seq.names_ecs() {
        return Ok(Intent::Ignore(format!(
            "attack sequence {} ({}) names no ECS task or cluster",
            finding.id, finding.finding_type
        )));
    }
    let hosts: Vec<String> = seq.instance_ids().into_iter().map(str::to_string).collect();
    let mut tasks = vec![];
    for arn in seq.task_arns() {
        let Some((cluster, cluster_arn)) = guardduty::cluster_of_task_arn(arn) else {
            continue;
        };
        checked_lengths(&finding, &cluster, &cluster_arn)?;
        let mut f = finding.clone();
        f.service.detection = None;
        f.resource.resource_type = guardduty::ECS_CLUSTER.into();
        f.resource.instance_details = None;
        f.resource.ecs_cluster_details = Some(EcsClusterDetails {
            name: Some(cluster.clone()),
            arn: Some(cluster_arn.clone()),
            task_details: Some(EcsTaskDetails {
                arn: Some(arn.to_string()),
                ..EcsTaskDetails::default()
            }),
        });
        tasks.push(Threat {
            finding: f,
            cluster,
            cluster_ref: cluster_arn,
        });
    }
    Ok(Intent::Sequence(Box::new(SequenceThreat {
        finding,
        tasks,
        hosts,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) use shared::testing::envelope as fixture;

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
    fn a_host_finding_names_its_instance_and_cluster() {
        let Intent::Host(h) = intent(&fixture("guardduty-host-new-binary-instance.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(h.instance_id, "i-0abc123def4567890");
        assert_eq!(
            h.cluster,
            Some((
                "prod".into(),
                "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into()
            ))
        );
        let mut e = fixture("guardduty-host-new-binary-instance.json");
        e.detail["resource"]
            .as_object_mut()
            .unwrap()
            .remove("ecsClusterDetails");
        let Intent::Host(h) = intent(&e).unwrap() else {
            panic!()
        };
        assert_eq!(h.cluster, None, "found later among the managed clusters");
    }

    #[test]
    fn a_host_finding_without_an_instance_is_a_bad_event() {
        let mut e = fixture("guardduty-host-new-binary-instance.json");
        e.detail["resource"]["instanceDetails"] = serde_json::json!({});
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn an_attack_sequence_becomes_task_threats_and_hosts() {
        let Intent::Sequence(s) = intent(&fixture("guardduty-attack-sequence-ecs.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.hosts, ["i-0abc123def4567890"]);
        assert_eq!(s.tasks.len(), 1);
        let t = &s.tasks[0];
        assert_eq!(t.cluster, "prod");
        assert_eq!(t.finding.id, s.finding.id);
        assert_eq!(
            t.finding.finding_type,
            "AttackSequence:ECS/CompromisedCluster"
        );
        assert!(t
            .finding
            .task()
            .unwrap()
            .arn
            .as_deref()
            .unwrap()
            .ends_with("/0f9e8d7c6b5a49382716051423324150"));
    }

    #[test]
    fn an_attack_sequence_naming_no_ecs_resource_is_ignored() {
        let mut e = fixture("guardduty-attack-sequence-ecs.json");
        e.detail["type"] = "AttackSequence:S3/CompromisedData".into();
        e.detail["service"]["detection"]["sequence"]["resources"] = serde_json::json!([
            {"uid": "arn:aws:s3:::bucket", "resourceType": "S3_BUCKET"}
        ]);
        assert!(matches!(intent(&e).unwrap(), Intent::Ignore(_)));
        let mut e = fixture("guardduty-attack-sequence-ecs.json");
        e.detail["service"]
            .as_object_mut()
            .unwrap()
            .remove("detection");
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn findings_about_other_resources_are_ignored() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["resource"]["resourceType"] = "S3Bucket".into();
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
        use shared::testing::strategies;
        strategies::check(
            "guardduty-responder parse::intent",
            strategies::payloads(),
            |v| {
                if let Ok(e) = Envelope::parse(v) {
                    strategies::assert_ok_or_bad_event("intent", &intent(&e));
                }
            },
        );
    }
}
