//! What the crates' tests build their inputs from, so each test module does not keep its
//! own copy: a function's configuration from a few variables, the sample events in
//! `tests/fixtures/`, events, AWS error metadata, a reporter, and the tasks, groups,
//! container instances, services and images the adapters return, with defaults a test
//! overrides by struct update; and the property-test strategies ([`strategies`]). Compiled for `shared`'s own tests and, through the `testing` feature, for the
//! other crates' tests (their `[dev-dependencies]`); never into a function binary.
//!
//! The defaults describe one small fleet: account [`ACCOUNT`] in [`REGION`], cluster
//! `prod`, service `web`, group `web-asg`, host `i-0aaa` on container instance `arn:ci/1`.

pub mod strategies;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aws_sdk_ecs::error::ErrorMetadata;
use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};

use crate::aws::autoscaling::{
    Group, GroupDetails, GroupInstance, LaunchSource, LaunchTemplateRef, CLUSTER_TAG,
};
use crate::aws::ec2::Image;
use crate::aws::ecs::{ContainerInstance, ServiceDescription, Task};
use crate::config::{ConfigError, Env};
use crate::events::autoscaling::{LifecycleAction, Transition};
use crate::events::Envelope;
use crate::notify::Reporter;
use crate::runtime::Function;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The one variable every function requires, set to a topic in the test account.
pub const TOPIC: (&str, &str) = ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t");

// --- configuration ----------------------------------------------------------------

/// An environment of [`TOPIC`] and `pairs` (a pair naming the topic again wins).
pub fn env<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
    Env::from_pairs(std::iter::once(TOPIC).chain(pairs))
}

/// A function's configuration from [`env`]`(pairs)`: `configure::<Config>([...])`.
pub fn configure<'a, F: Function>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<F, ConfigError> {
    F::configure(&env(pairs))
}

/// [`configure`] for a test that needs the configuration to be valid.
pub fn config<'a, F: Function>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> F {
    configure(pairs).unwrap_or_else(|e| panic!("{e}"))
}

// --- sample events ----------------------------------------------------------------

/// `tests/fixtures/`: AWS-shaped payloads, one a file.
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The payload in `tests/fixtures/{name}`.
pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The event in `tests/fixtures/{name}`.
pub fn envelope(name: &str) -> Envelope {
    Envelope::parse(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An event `e-1` of `detail_type` from `source` in the test account and Region, at
/// 2026-11-30 00:00 UTC.
pub fn event(detail_type: &str, source: &str, detail: Value) -> Envelope {
    Envelope {
        id: "e-1".into(),
        detail_type: detail_type.into(),
        source: source.into(),
        account: ACCOUNT.into(),
        region: REGION.into(),
        time: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
        resources: vec![],
        detail,
        carry: None,
        other: Map::new(),
    }
}

/// The pending terminate or launch of host `i-0aaa` in group `web-asg`, hook `drain`.
pub fn lifecycle_action(transition: Transition) -> LifecycleAction {
    LifecycleAction {
        group: "web-asg".into(),
        hook: "drain".into(),
        instance_id: "i-0aaa".into(),
        token: Some("tok".into()),
        transition,
    }
}

/// A reporter of `function` that publishes to [`TOPIC`] through `sns` (a mock client, or
/// one that never gets to send), not in dry run.
pub fn reporter(sns: aws_sdk_sns::Client, function: &'static str) -> Reporter {
    Reporter::new(crate::aws::sns::Topic::new(sns, TOPIC.1), function, false)
}

// --- AWS answers ------------------------------------------------------------------

/// What AWS puts on the wire beside an error (its code and message); a modeled error or
/// `generic` built in a test has neither otherwise, and the adapters classify by them.
/// One type for every SDK client.
pub fn aws_error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// A RUNNING task of service `web` on container instance `arn:ci/1`, launched on EC2.
pub fn task(arn: &str) -> Task {
    Task {
        arn: arn.into(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        group: "service:web".into(),
        started_by: None,
        started_at: None,
        task_definition_arn: "td".into(),
        launch_type: Some("EC2".into()),
        container_instance_arn: Some("arn:ci/1".into()),
    }
}

/// An ACTIVE container instance for host `ec2_instance_id` with a connected agent.
pub fn container_instance(arn: &str, ec2_instance_id: &str) -> ContainerInstance {
    ContainerInstance {
        arn: arn.into(),
        ec2_instance_id: ec2_instance_id.into(),
        status: "ACTIVE".into(),
        agent_connected: true,
        running_tasks_count: 0,
        ami_id: None,
    }
}

/// An ACTIVE service `cluster/name` running 2 of 2 tasks, deployed by ECS, not deploying.
pub fn service(cluster: &str, name: &str) -> ServiceDescription {
    let arn = |kind: &str, path: &str| format!("arn:aws:ecs:{REGION}:1:{kind}/{path}");
    ServiceDescription {
        arn: arn("service", &format!("{cluster}/{name}")),
        name: name.into(),
        cluster_arn: arn("cluster", cluster),
        status: "ACTIVE".into(),
        desired_count: 2,
        running_count: 2,
        tags: BTreeMap::new(),
        deployment_controller: "ECS".into(),
        task_definition: arn("task-definition", &format!("{name}:1")),
        deploying: false,
        minimum_healthy_percent: Some(50),
    }
}

/// An Amazon-owned Linux HVM image `name` for `arch` (`x86_64`, `arm64`).
pub fn image(id: &str, name: &str, arch: &str) -> Image {
    Image {
        image_id: id.into(),
        architecture: arch.into(),
        platform: String::new(),
        platform_details: "Linux/UNIX".into(),
        virtualization_type: "hvm".into(),
        name: name.into(),
        description: String::new(),
        owner_alias: "amazon".into(),
    }
}

/// An instance of a group, in `lifecycle` state (as AWS spells it) and `health`.
pub fn member(instance_id: &str, lifecycle: &str, health: &str) -> GroupInstance {
    GroupInstance {
        instance_id: instance_id.into(),
        lifecycle_state: lifecycle.into(),
        health_status: health.into(),
    }
}

/// An Auto Scaling group opted in for `cluster` (by its tag; `None`: not tagged).
pub fn group(
    name: &str,
    cluster: Option<&str>,
    instances: impl IntoIterator<Item = GroupInstance>,
) -> Group {
    Group {
        name: name.into(),
        tags: cluster
            .map(|c| (CLUSTER_TAG.to_string(), c.to_string()))
            .into_iter()
            .collect(),
        instances: instances.into_iter().collect(),
    }
}

/// `group` launching from version 1 of launch template `lt-1`, as many desired as it
/// has instances, none protected, no mixed instances policy.
pub fn details(group: Group) -> GroupDetails {
    GroupDetails {
        desired_capacity: group.instances.len() as i32,
        group,
        launch: LaunchSource::LaunchTemplate {
            template: LaunchTemplateRef {
                id: Some("lt-1".into()),
                name: None,
                version: "1".into(),
            },
        },
        protected: BTreeSet::new(),
        overrides: vec![],
        instance_types: BTreeMap::new(),
    }
}
