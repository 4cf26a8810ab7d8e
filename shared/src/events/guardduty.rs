//! GuardDuty findings (Runtime Monitoring for ECS).
//!
//! A finding arrives as a `GuardDuty Finding` event whose `detail` is the finding in
//! GuardDuty's JSON format (camelCase). Almost every field is optional in that format
//! and differs between finding types, so only `id`, `type` and `severity` are required
//! here; everything else is optional or defaulted and the caller decides what it needs.
//! Runtime fields (process names, paths, command lines) come from inside a possibly
//! compromised container: they are carried as data and never interpreted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Envelope;
use crate::error::Error;

pub const SOURCE: &str = "aws.guardduty";
pub const FINDING: &str = "GuardDuty Finding";
pub const ECS_CLUSTER: &str = "ECSCluster";
pub const RUNTIME_MONITORING: &str = "RuntimeMonitoring";
/// `resource.resourceType` of a finding about an EC2 instance (for Runtime Monitoring:
/// something ran on the host itself, outside any task).
pub const INSTANCE: &str = "Instance";
/// Every attack sequence type starts with this (`AttackSequence:ECS/CompromisedCluster`).
pub const ATTACK_SEQUENCE: &str = "AttackSequence:";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    #[serde(rename = "type")]
    pub finding_type: String,
    /// Low 1-3.9, Medium 4-6.9, High 7-8.9, Critical 9-10.
    pub severity: f64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub resource: Resource,
    #[serde(default)]
    pub service: Service,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub ecs_cluster_details: Option<EcsClusterDetails>,
    /// Present when the task runs on an EC2 container instance.
    #[serde(default)]
    pub instance_details: Option<InstanceDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsClusterDetails {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub task_details: Option<EcsTaskDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsTaskDetails {
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub definition_arn: Option<String>,
    /// `service:NAME` or `family:NAME`.
    #[serde(default)]
    pub group: Option<String>,
    /// `EC2` or `FARGATE` (GuardDuty's documentation also writes `Fargate`).
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub containers: Vec<FindingContainer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingContainer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub container_runtime: Option<String>,
    #[serde(default)]
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetails {
    #[serde(default)]
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default)]
    pub feature_name: Option<String>,
    /// How many times GuardDuty has seen this activity; grows on every update.
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub event_first_seen: Option<String>,
    #[serde(default)]
    pub event_last_seen: Option<String>,
    #[serde(default)]
    pub archived: bool,
    /// `{"value": "<json>", "type": "default"}`; sample findings carry `"sample": true`.
    #[serde(default)]
    pub additional_info: Option<Value>,
    #[serde(default)]
    pub runtime_details: Option<RuntimeDetails>,
    /// Extended Threat Detection: the attack sequence an `AttackSequence:*` finding is.
    #[serde(default)]
    pub detection: Option<Detection>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    #[serde(default)]
    pub sequence: Option<Sequence>,
}

/// An attack sequence: the signals (findings, API activity) GuardDuty correlated, and
/// the resources, actors and endpoints they involve (GuardDuty API `Sequence`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub signals: Vec<Signal>,
    #[serde(default)]
    pub resources: Vec<SequenceResource>,
    #[serde(default)]
    pub actors: Vec<Value>,
    #[serde(default)]
    pub endpoints: Vec<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    #[serde(default)]
    pub uid: Option<String>,
    /// `FINDING`, `CLOUD_TRAIL`, `S3_DATA_EVENTS`, ...
    #[serde(default, rename = "type")]
    pub signal_type: Option<String>,
    /// For a finding signal, the finding type.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: Option<f64>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub first_seen_at: Option<Value>,
    #[serde(default)]
    pub last_seen_at: Option<Value>,
    #[serde(default)]
    pub resource_uids: Vec<String>,
}

/// A resource of an attack sequence (GuardDuty API `ResourceV2`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceResource {
    /// The ARN when there is one, else the name or id.
    #[serde(default)]
    pub uid: String,
    /// `ECS_TASK`, `ECS_CLUSTER`, `EC2_INSTANCE`, `CONTAINER`, `S3_BUCKET`, ...
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// What the process inside the container did. Every string here is attacker controlled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDetails {
    #[serde(default)]
    pub process: Option<ProcessDetails>,
    /// Type-specific facts (`commandLineExample`, `socketPath`, `scriptPath`, ...).
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessDetails {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub executable_path: Option<String>,
    #[serde(default)]
    pub executable_sha256: Option<String>,
    #[serde(default)]
    pub pid: Option<i64>,
    #[serde(default)]
    pub user: Option<String>,
}

/// GuardDuty's severity bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Level {
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn from_score(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Level::Critical,
            s if s >= 7.0 => Level::High,
            s if s >= 4.0 => Level::Medium,
            _ => Level::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
            Level::Critical => "Critical",
        }
    }
}

impl Finding {
    /// The finding in a `GuardDuty Finding` event. Only the fields without which a
    /// finding means nothing are checked here.
    pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
        if event.detail_type != FINDING {
            return Err(Error::BadEvent(format!(
                "expected a {FINDING:?} event, got {:?}",
                event.detail_type
            )));
        }
        let f: Finding = event.detail_as()?;
        if f.id.trim().is_empty() || f.finding_type.trim().is_empty() {
            return Err(Error::BadEvent("finding without an id or a type".into()));
        }
        if !f.severity.is_finite() || !(0.0..=10.0).contains(&f.severity) {
            return Err(Error::BadEvent(format!(
                "finding severity {} is outside 0-10",
                f.severity
            )));
        }
        Ok(f)
    }

    pub fn level(&self) -> Level {
        Level::from_score(self.severity)
    }

    /// A Runtime Monitoring finding about an ECS task (the kind this module is for).
    pub fn is_ecs_runtime(&self) -> bool {
        self.resource.resource_type == ECS_CLUSTER
            && self.service.feature_name.as_deref() == Some(RUNTIME_MONITORING)
    }

    /// Sample findings (CreateSampleFindings, or the console's "Generate sample
    /// findings") name resources that do not exist.
    pub fn is_sample(&self) -> bool {
        let Some(info) = &self.service.additional_info else {
            return false;
        };
        let sample = |v: &Value| v.get("sample").and_then(Value::as_bool) == Some(true);
        sample(info)
            || info
                .get("value")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .is_some_and(|v| sample(&v))
    }

    /// The cluster name, from `name` or else from the cluster ARN.
    pub fn cluster_name(&self) -> Option<String> {
        let details = self.resource.ecs_cluster_details.as_ref()?;
        details
            .name
            .clone()
            .or_else(|| {
                details
                    .arn
                    .as_deref()
                    .and_then(|a| a.split_once(":cluster/"))
                    .map(|(_, name)| name.to_string())
            })
            .filter(|n| !n.trim().is_empty())
    }

    pub fn task(&self) -> Option<&EcsTaskDetails> {
        self.resource
            .ecs_cluster_details
            .as_ref()?
            .task_details
            .as_ref()
    }

    /// The EC2 instance hosting the task, when GuardDuty names one.
    pub fn instance_id(&self) -> Option<&str> {
        self.resource
            .instance_details
            .as_ref()?
            .instance_id
            .as_deref()
            .filter(|i| i.starts_with("i-"))
    }

    pub fn process(&self) -> Option<&ProcessDetails> {
        self.service.runtime_details.as_ref()?.process.as_ref()
    }

    /// A Runtime Monitoring finding about an EC2 instance itself (a process on the
    /// host, not in a task).
    pub fn is_host_runtime(&self) -> bool {
        self.resource.resource_type == INSTANCE
            && self.service.feature_name.as_deref() == Some(RUNTIME_MONITORING)
    }

    /// The attack sequence of an `AttackSequence:*` finding.
    pub fn sequence(&self) -> Option<&Sequence> {
        if !self.finding_type.starts_with(ATTACK_SEQUENCE) {
            return None;
        }
        self.service.detection.as_ref()?.sequence.as_ref()
    }
}

impl Sequence {
    /// The ECS task ARNs the sequence names (`ECS_TASK` resources).
    pub fn task_arns(&self) -> Vec<&str> {
        self.of_type("ECS_TASK")
            .filter(|uid| uid.starts_with("arn:") && uid.contains(":task/"))
            .collect()
    }

    /// The ECS cluster ARNs or names the sequence names (`ECS_CLUSTER` resources).
    pub fn clusters(&self) -> Vec<&str> {
        self.of_type("ECS_CLUSTER").collect()
    }

    /// The EC2 instance ids the sequence names (`EC2_INSTANCE` resources, by id or ARN).
    pub fn instance_ids(&self) -> Vec<&str> {
        self.of_type("EC2_INSTANCE")
            .map(|uid| uid.rsplit_once("instance/").map_or(uid, |(_, id)| id))
            .filter(|id| id.starts_with("i-"))
            .collect()
    }

    /// Whether the sequence involves ECS at all (a task or a cluster).
    pub fn names_ecs(&self) -> bool {
        !self.task_arns().is_empty() || !self.clusters().is_empty()
    }

    fn of_type<'a>(&'a self, t: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let mut seen = std::collections::BTreeSet::new();
        self.resources
            .iter()
            .filter(move |r| r.resource_type == t)
            .map(|r| r.uid.trim())
            .filter(move |uid| !uid.is_empty() && seen.insert(*uid))
    }
}

/// The cluster an ECS task ARN names (`arn:…:task/CLUSTER/ID`; the old format without a
/// cluster gives `None`), as (name, cluster ARN).
pub fn cluster_of_task_arn(task_arn: &str) -> Option<(String, String)> {
    let (prefix, rest) = task_arn.split_once(":task/")?;
    let (cluster, _) = rest.split_once('/')?;
    if cluster.is_empty() {
        return None;
    }
    Some((cluster.to_string(), format!("{prefix}:cluster/{cluster}")))
}

impl EcsTaskDetails {
    pub fn is_fargate(&self) -> bool {
        self.launch_type
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("FARGATE"))
    }

    /// The task definition family (`arn:...:task-definition/FAMILY:REVISION`).
    pub fn family(&self) -> Option<&str> {
        let def = self.definition_arn.as_deref()?;
        let name = def.rsplit_once('/').map_or(def, |(_, n)| n);
        Some(name.split_once(':').map_or(name, |(f, _)| f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::envelope as fixture;

    #[test]
    fn ec2_reverse_shell_finding_names_task_host_and_process() {
        let f = Finding::from_envelope(&fixture("guardduty-reverse-shell-ec2.json")).unwrap();
        assert!(f.is_ecs_runtime());
        assert!(!f.is_sample());
        assert_eq!(f.finding_type, "Execution:Runtime/ReverseShell");
        assert_eq!(f.level(), Level::High);
        assert_eq!(f.cluster_name().as_deref(), Some("prod"));
        let t = f.task().unwrap();
        assert!(!t.is_fargate());
        assert_eq!(t.family(), Some("web"));
        assert_eq!(t.group.as_deref(), Some("service:web"));
        assert_eq!(f.instance_id(), Some("i-0abc123def4567890"));
        assert_eq!(f.process().unwrap().name.as_deref(), Some("bash"));
        assert_eq!(f.service.count, 1);
    }

    #[test]
    fn fargate_finding_has_no_host() {
        let f = Finding::from_envelope(&fixture("guardduty-bitcoin-tool-fargate.json")).unwrap();
        assert!(f.task().unwrap().is_fargate());
        assert_eq!(f.instance_id(), None);
        assert_eq!(f.task().unwrap().family(), Some("report-builder"));
        assert_eq!(f.service.count, 3);
    }

    #[test]
    fn sample_findings_are_recognised_in_both_additional_info_shapes() {
        let f = Finding::from_envelope(&fixture("guardduty-sample-finding.json")).unwrap();
        assert!(f.is_sample());
        let mut e = fixture("guardduty-docker-socket-medium.json");
        e.detail["service"]["additionalInfo"] = serde_json::json!({"sample": true});
        assert!(Finding::from_envelope(&e).unwrap().is_sample());
        assert_eq!(Finding::from_envelope(&e).unwrap().level(), Level::Medium);
    }

    #[test]
    fn a_finding_with_only_id_type_and_severity_parses() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail = serde_json::json!({"id": "x", "type": "T", "severity": 9.5});
        let f = Finding::from_envelope(&e).unwrap();
        assert_eq!(f.level(), Level::Critical);
        assert!(!f.is_ecs_runtime());
        assert_eq!(f.cluster_name(), None);
        assert_eq!(f.task(), None);
    }

    #[test]
    fn cluster_name_falls_back_to_the_cluster_arn() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["resource"]["ecsClusterDetails"]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let f = Finding::from_envelope(&e).unwrap();
        assert_eq!(f.cluster_name().as_deref(), Some("prod"));
    }

    #[test]
    fn missing_ids_bad_severities_and_other_events_are_bad_events() {
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["severity"] = serde_json::json!(11);
        assert!(matches!(
            Finding::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
        e.detail["severity"] = serde_json::json!("high");
        assert!(matches!(
            Finding::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail["id"] = serde_json::json!("");
        assert!(matches!(
            Finding::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
        let mut e = fixture("guardduty-reverse-shell-ec2.json");
        e.detail_type = "GuardDuty Runtime Protection Unhealthy".into();
        assert!(matches!(
            Finding::from_envelope(&e),
            Err(Error::BadEvent(_))
        ));
    }

    #[test]
    fn host_finding_names_the_instance_and_its_cluster() {
        let f =
            Finding::from_envelope(&fixture("guardduty-host-new-binary-instance.json")).unwrap();
        assert!(f.is_host_runtime());
        assert!(!f.is_ecs_runtime());
        assert_eq!(f.instance_id(), Some("i-0abc123def4567890"));
        assert_eq!(f.cluster_name().as_deref(), Some("prod"));
        assert_eq!(f.task(), None);
        assert!(f.sequence().is_none());
    }

    #[test]
    fn attack_sequence_lists_its_signals_tasks_hosts_and_clusters() {
        let f = Finding::from_envelope(&fixture("guardduty-attack-sequence-ecs.json")).unwrap();
        assert_eq!(f.level(), Level::Critical);
        let s = f.sequence().unwrap();
        assert!(s.names_ecs());
        assert!(s.signals.len() >= 2);
        assert_eq!(
            s.task_arns(),
            ["arn:aws:ecs:us-east-1:123456789012:task/prod/0f9e8d7c6b5a49382716051423324150"]
        );
        assert_eq!(s.instance_ids(), ["i-0abc123def4567890"]);
        assert_eq!(
            s.clusters(),
            ["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]
        );
        let (name, arn) = cluster_of_task_arn(s.task_arns()[0]).unwrap();
        assert_eq!(name, "prod");
        assert_eq!(arn, "arn:aws:ecs:us-east-1:123456789012:cluster/prod");
        assert_eq!(
            cluster_of_task_arn("arn:aws:ecs:us-east-1:1:task/abc"),
            None
        );
    }

    #[test]
    fn levels_follow_guardduty_bands() {
        assert_eq!(Level::from_score(3.9), Level::Low);
        assert_eq!(Level::from_score(4.0), Level::Medium);
        assert_eq!(Level::from_score(7.0), Level::High);
        assert_eq!(Level::from_score(8.9), Level::High);
        assert_eq!(Level::from_score(9.0), Level::Critical);
    }
}
