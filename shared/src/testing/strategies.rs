//! Property tests' raw material for every event parser: arbitrary JSON, and the AWS-shaped
//! fixtures in `tests/fixtures/` with fields dropped, retyped, blown up or set to values
//! no enum knows. A parser fed any of them must answer `Ok` or [`Error::BadEvent`]: never
//! panic, never an AWS or config error. Used by `shared`'s tests and each function's
//! `parse` tests (through [`crate::testing`]).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use crate::error::Error;

/// Cases per property: enough to walk every fixture's fields, few enough for `make test`.
pub const CASES: u32 = 256;

/// Field names and values the parsers look for, so arbitrary JSON reaches past the
/// first check often enough to matter.
const KEYS: &[&str] = &[
    "id",
    "detail-type",
    "source",
    "account",
    "region",
    "time",
    "resources",
    "detail",
    "ecs-autopilot",
    "Records",
    "body",
    "messageId",
    "EventSource",
    "Sns",
    "Message",
    "MessageId",
    "Timestamp",
    "TopicArn",
    "Event",
    "LifecycleTransition",
    "Time",
    "AccountId",
    "RequestId",
    "EC2InstanceId",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "LifecycleActionToken",
    "instance-id",
    "instance-action",
    "name",
    "operation",
    "type",
    "severity",
    "resource",
    "service",
    "eventArn",
    "eventTypeCode",
    "startTime",
    "affectedEntities",
    "entityValue",
    "tags",
    "instanceDetails",
    "instanceId",
    "ecsClusterDetails",
    "detection",
    "sequence",
    "signals",
    "resources",
    "resourceType",
    "resourceUids",
    "uid",
];
const WORDS: &[&str] = &[
    "EC2 Instance-terminate Lifecycle Action",
    "EC2 Instance-launch Lifecycle Action",
    "EC2 Spot Instance Interruption Warning",
    "EC2 Instance Rebalance Recommendation",
    "autoscaling:TEST_NOTIFICATION",
    "autoscaling:EC2_INSTANCE_TERMINATING",
    "autoscaling:EC2_INSTANCE_LAUNCHING",
    "GuardDuty Finding",
    "AWS Health Event",
    "Parameter Store Change",
    "Scheduled Event",
    "EC2 Auto Scaling Instance Refresh Failed",
    "aws.guardduty",
    "aws.health",
    "aws:sns",
    "aws:sqs",
    "ECSCluster",
    "RuntimeMonitoring",
    "Instance",
    "AttackSequence:ECS/CompromisedCluster",
    "ECS_TASK",
    "ECS_CLUSTER",
    "EC2_INSTANCE",
    "arn:aws:ecs:us-east-1:123456789012:task/prod/0f9e8d7c6b5a49382716051423324150",
    "arn:aws:ecs:us-east-1:123456789012:task//x",
    "scheduledChange",
    "AWS_ECS_TASK_PATCHING_RETIREMENT",
    "i-0123456789abcdef0",
    "2024-06-12T20:30:00Z",
    "Wed, 16 Aug 2023 23:18:51 GMT",
    "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
    "",
];

/// Any JSON value, biased towards the shapes and words events are made of.
pub fn any_json() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        prop::sample::select(WORDS).prop_map(str::to_string),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(KEYS).prop_map(str::to_string),
            1 => any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to one place in a JSON tree.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Remove the field (or element); a root is replaced by `null`.
    Drop,
    /// Put a value of another type (or any value) there.
    Replace(Value),
    /// A string far longer than any AWS sends (100k characters).
    Huge,
    /// A value no enum knows, or a known word in the wrong place.
    Word(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::Drop),
        3 => any_json().prop_map(Mutation::Replace),
        1 => Just(Mutation::Huge),
        2 => prop_oneof![
            prop::sample::select(WORDS).prop_map(str::to_string),
            Just("UNKNOWN_VALUE_\u{1F980}".to_string()),
        ]
        .prop_map(Mutation::Word),
    ]
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    At(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (n, child) in a.iter().enumerate() {
                prefix.push(Seg::At(n));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn apply(root: &mut Value, path: &[Seg], m: Mutation) {
    let Some((last, parent_path)) = path.split_last() else {
        *root = match m {
            Mutation::Replace(v) => v,
            _ => Value::Null,
        };
        return;
    };
    let mut parent = &mut *root;
    for seg in parent_path {
        parent = match (seg, parent) {
            (Seg::Key(k), Value::Object(o)) => o.get_mut(k).expect("path exists"),
            (Seg::At(n), Value::Array(a)) => &mut a[*n],
            _ => unreachable!("paths follow the tree"),
        };
    }
    let new = match m {
        Mutation::Drop => {
            match (last, parent) {
                (Seg::Key(k), Value::Object(o)) => {
                    o.remove(k);
                }
                (Seg::At(n), Value::Array(a)) => {
                    a.remove(*n);
                }
                _ => unreachable!("paths follow the tree"),
            }
            return;
        }
        Mutation::Replace(v) => v,
        Mutation::Huge => Value::String("\u{e9}x".repeat(50_000)),
        Mutation::Word(w) => Value::String(w),
    };
    match (last, parent) {
        (Seg::Key(k), Value::Object(o)) => {
            o.insert(k.clone(), new);
        }
        (Seg::At(n), Value::Array(a)) => a[*n] = new,
        _ => unreachable!("paths follow the tree"),
    }
}

/// `value` with one to three places mutated.
pub fn mutated(value: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec((any::<Index>(), mutation()), 1..4).prop_map(move |changes| {
        let mut v = value.clone();
        for (at, m) in changes {
            let mut all = vec![];
            paths(&v, &mut vec![], &mut all);
            let path = all[at.index(all.len())].clone();
            apply(&mut v, &path, m);
        }
        v
    })
}

/// Every fixture in `tests/fixtures/`, by file name.
pub fn fixtures() -> Vec<(String, Value)> {
    let dir = super::fixtures_dir();
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture reads");
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("fixture is JSON"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

/// Payloads an event parser may be handed: mostly a mutated fixture (so the parser gets
/// deep before something is wrong), sometimes anything at all, sometimes a fixture whole.
pub fn payloads() -> impl Strategy<Value = Value> {
    let all: Vec<Value> = fixtures().into_iter().map(|(_, v)| v).collect();
    prop_oneof![
        6 => prop::sample::select(all.clone()).prop_flat_map(mutated),
        2 => any_json(),
        1 => prop::sample::select(all),
    ]
}

/// The verdict every parser owes: `Ok`, or a `BadEvent` that says what is wrong.
pub fn assert_ok_or_bad_event<T: std::fmt::Debug>(what: &str, r: &Result<T, Error>) {
    match r {
        Ok(_) => {}
        Err(Error::BadEvent(why)) => assert!(!why.is_empty(), "{what}: BadEvent says nothing"),
        Err(other) => panic!("{what}: not Ok nor BadEvent: {other:?}"),
    }
}

/// Runs `test` on [`CASES`] values of `strategy` (a panic fails with the shrunk input)
/// and returns how many ran, for the suites to report.
pub fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value)) -> u32 {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&strategy, |v| {
            test(v);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("fuzzed {name}: {CASES} cases");
    CASES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{autoscaling, ec2, guardduty, health, ssm, Envelope};

    /// Every family's parser on one envelope (whatever its detail-type says).
    fn every_family(e: &Envelope) {
        assert_ok_or_bad_event("lifecycle", &autoscaling::LifecycleAction::from_envelope(e));
        assert_ok_or_bad_event(
            "refresh",
            &autoscaling::refresh::RefreshEvent::from_envelope(e),
        );
        assert_ok_or_bad_event("spot", &ec2::InstanceWarning::from_envelope(e));
        assert_ok_or_bad_event("finding", &guardduty::Finding::from_envelope(e));
        let h = health::HealthEvent::from_envelope(e);
        assert_ok_or_bad_event("health", &h);
        if let Ok(h) = h {
            let _ = (h.is_closed(), h.description(), h.entity_values(e));
        }
        assert_ok_or_bad_event("parameter", &ssm::ParameterChange::from_envelope(e));
        assert_ok_or_bad_event("ami release", &ssm::AmiRelease::from_envelope(e));
        if let Ok(f) = guardduty::Finding::from_envelope(e) {
            let _ = (
                f.level(),
                f.is_ecs_runtime(),
                f.is_sample(),
                f.cluster_name(),
            );
            let _ = (f.task(), f.instance_id(), f.process());
            let _ = f.task().map(|t| (t.is_fargate(), t.family()));
            let _ = f.is_host_runtime();
            if let Some(s) = f.sequence() {
                let _ = (s.names_ecs(), s.instance_ids(), s.clusters());
                for arn in s.task_arns() {
                    let _ = guardduty::cluster_of_task_arn(arn);
                }
            }
        }
    }

    #[test]
    fn every_parser_answers_ok_or_bad_event_for_any_payload() {
        let mut cases = check("Envelope::parse + families", payloads(), |v| {
            let parsed = Envelope::parse(v.clone());
            assert_ok_or_bad_event("Envelope::parse", &parsed);
            assert_ok_or_bad_event(
                "hook notification",
                &autoscaling::from_hook_notification(&v),
            );
            if let Some(r) = ssm::sns_records_to_envelopes(&v) {
                assert_ok_or_bad_event("sns records", &r);
            }
            if let Ok(e) = parsed {
                every_family(&e);
            }
        });
        cases += check("Envelope::parse_str", any::<String>(), |s| {
            assert_ok_or_bad_event("Envelope::parse_str", &Envelope::parse_str(&s));
        });
        cases += check("Envelope::parse_str of cut fixtures", cut_fixtures(), |s| {
            assert_ok_or_bad_event("Envelope::parse_str", &Envelope::parse_str(&s));
        });
        cases += check("health times", any::<String>(), |s| {
            let _ = health::parse_time(&s);
        });
        println!("shared parsers: {cases} cases");
    }

    /// A fixture's text cut anywhere: what a truncated SQS body looks like.
    fn cut_fixtures() -> impl Strategy<Value = String> {
        let texts: Vec<String> = fixtures().into_iter().map(|(_, v)| v.to_string()).collect();
        (prop::sample::select(texts), any::<Index>()).prop_map(|(t, at)| {
            let mut cut = at.index(t.len() + 1);
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t[..cut].to_string()
        })
    }

    #[test]
    fn mutations_drop_retype_and_blow_up_fields() {
        let v = serde_json::json!({"a": {"b": [1, 2]}});
        let mut dropped = v.clone();
        apply(
            &mut dropped,
            &[Seg::Key("a".into()), Seg::Key("b".into())],
            Mutation::Drop,
        );
        assert_eq!(dropped, serde_json::json!({"a": {}}));
        let mut huge = v.clone();
        apply(
            &mut huge,
            &[Seg::Key("a".into()), Seg::Key("b".into()), Seg::At(1)],
            Mutation::Huge,
        );
        assert_eq!(huge["a"]["b"][1].as_str().unwrap().chars().count(), 100_000);
        let mut all = vec![];
        paths(&v, &mut vec![], &mut all);
        assert_eq!(all.len(), 5, "root, a, a.b, a.b[0], a.b[1]");
    }
}
