use std::sync::{Arc, Mutex};

use aws_sdk_sns::operation::publish::PublishOutput;
use aws_sdk_sns::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use serde::Serialize;

use super::*;
use crate::notify::Notice;

/// A step of a made-up function: `Write` mutates, `Tell` only reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
enum Step {
    Write {
        name: &'static str,
        policy: &'static str,
    },
    Hold,
    Release,
    Tell(Report),
}

impl PlanStep for Step {
    fn action(&self) -> &'static str {
        match self {
            Step::Write { name, .. } => name,
            Step::Hold => "hold",
            Step::Release => "release",
            Step::Tell(r) => r.action,
        }
    }
    fn mutates(&self) -> bool {
        !matches!(self, Step::Tell(_))
    }
    fn dry_run(self) -> DryRun<Self> {
        match self {
            Step::Hold => DryRun::Instead(Step::Release),
            Step::Write { name, .. } => DryRun::Planned(Some(Notice::info(name, "would write"))),
            _ => DryRun::Planned(None),
        }
    }
    fn on_failure(&self) -> OnFailure {
        match self {
            Step::Write {
                policy: "continue", ..
            } => OnFailure::Continue,
            Step::Write {
                policy: "tolerate", ..
            } => OnFailure::Tolerate,
            _ => OnFailure::Stop,
        }
    }
    fn runs_after_failure(&self) -> bool {
        !matches!(
            self,
            Step::Write {
                policy: "clean",
                ..
            }
        )
    }
    fn about(&self, event: &Subject) -> Subject {
        match self {
            Step::Tell(r) => event.narrowed(&r.about),
            _ => event.clone(),
        }
    }
}

fn write(name: &'static str, policy: &'static str) -> Step {
    Step::Write { name, policy }
}

/// A reporter whose topic records each published notification's action and outcome.
fn reporter(sent: Arc<Mutex<Vec<String>>>) -> (Reporter, aws_smithy_mocks::Rule) {
    let rule = mock!(Client::publish)
        .match_requests(move |req| {
            let body: serde_json::Value =
                serde_json::from_str(req.message().unwrap_or("{}")).unwrap();
            let ctx = &body["metadata"]["additionalContext"];
            sent.lock().unwrap().push(format!(
                "{} {}",
                ctx["action"].as_str().unwrap_or(""),
                ctx["outcome"].as_str().unwrap_or("")
            ));
            true
        })
        .then_output(|| PublishOutput::builder().build());
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
    (crate::testing::reporter(client, "test"), rule)
}

fn subject() -> Subject {
    Subject::of("e", "k")
}

/// Runs `plan`, failing the steps named in `failing`; returns the steps run, the
/// notifications sent and what the executor made of it.
async fn execute(
    plan: Vec<Step>,
    dry_run: bool,
    failing: &[&str],
) -> (Vec<&'static str>, Vec<String>, Executed) {
    let sent = Arc::new(Mutex::new(vec![]));
    let (reporter, _rule) = reporter(sent.clone());
    let ran = Arc::new(Mutex::new(vec![]));
    let executed = Executor::new(&reporter, dry_run)
        .reporting_failures()
        .execute(&subject(), plan, |_, step: Step| {
            let ran = ran.clone();
            let fails = failing.contains(&step.action());
            async move {
                ran.lock().unwrap().push(step.action());
                match (fails, step) {
                    (true, _) => Err(Error::Aws {
                        service: "x",
                        operation: "Op",
                        code: "Boom".into(),
                        message: "down".into(),
                        retryable: true,
                    }),
                    (false, Step::Tell(r)) => Ok(r.ran()),
                    (false, _) => Ok(Ran::quiet(Outcome::Done)),
                }
            }
        })
        .await;
    let ran = ran.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    (ran, sent, executed)
}

fn tell() -> Step {
    Step::Tell(Report {
        action: "report",
        outcome: Outcome::Skipped,
        about: About::group("web"),
        notice: Notice::info("t", "d"),
    })
}

#[tokio::test]
async fn dry_run_runs_only_what_changes_nothing_and_says_what_it_would_have_done() {
    let (ran, sent, executed) =
        execute(vec![write("a", "stop"), tell(), Step::Hold], true, &[]).await;
    assert_eq!(
        ran,
        vec!["report", "release"],
        "a mutating step never runs in dry run"
    );
    assert_eq!(sent, vec!["a planned", "report skipped"]);
    let outcomes: Vec<_> = executed
        .results
        .iter()
        .map(|r| (r.action, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("a", Outcome::Planned),
            ("report", Outcome::Skipped),
            ("release", Outcome::Done)
        ]
    );
    assert!(executed.into_result().is_ok());
}

#[tokio::test]
async fn outside_dry_run_every_step_runs_in_order() {
    let (ran, _, executed) =
        execute(vec![write("a", "stop"), Step::Hold, tell()], false, &[]).await;
    assert_eq!(ran, vec!["a", "hold", "report"]);
    assert_eq!(
        executed.results[2].subject.about.group.as_deref(),
        Some("web")
    );
}

#[tokio::test]
async fn stop_ends_the_plan_and_fails_the_event_with_the_failure_reported() {
    let (ran, sent, executed) =
        execute(vec![write("a", "stop"), write("b", "stop")], false, &["a"]).await;
    assert_eq!(ran, vec!["a"]);
    assert_eq!(sent, vec!["a failed"]);
    assert!(matches!(executed.failure, Some(Error::Aws { code, .. }) if code == "Boom"));
}

#[tokio::test]
async fn continue_runs_the_rest_then_fails_the_event_with_the_first_error() {
    let (ran, _, executed) = execute(
        vec![
            write("a", "continue"),
            write("b", "continue"),
            write("c", "stop"),
        ],
        false,
        &["a", "b"],
    )
    .await;
    assert_eq!(ran, vec!["a", "b", "c"]);
    let outcomes: Vec<_> = executed.results.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Failed, Outcome::Failed, Outcome::Done]
    );
    assert!(executed.into_result().is_err());
}

#[tokio::test]
async fn a_step_that_needs_a_clean_run_is_skipped_after_a_failure_and_runs_without_one() {
    let plan = || vec![write("a", "continue"), write("b", "clean")];
    let (ran, _, executed) = execute(plan(), false, &["a"]).await;
    assert_eq!(ran, vec!["a"]);
    assert_eq!(executed.results[1].outcome, Outcome::Skipped);
    assert!(executed.into_result().is_err());
    let (ran, _, executed) = execute(plan(), false, &[]).await;
    assert_eq!(ran, vec!["a", "b"]);
    assert!(executed.into_result().is_ok());
}

#[tokio::test]
async fn a_tolerated_failure_is_a_warning_and_does_not_fail_the_event() {
    let (ran, _, executed) = execute(
        vec![write("a", "tolerate"), write("b", "stop")],
        false,
        &["a"],
    )
    .await;
    assert_eq!(ran, vec!["a", "b"]);
    assert_eq!(executed.results[0].outcome, Outcome::Warning);
    assert!(executed.results[0]
        .error
        .as_deref()
        .unwrap()
        .contains("Boom"));
    assert!(executed.into_result().is_ok());
}

#[tokio::test]
async fn a_notification_that_cannot_be_sent_never_fails_the_plan() {
    let rule = mock!(Client::publish).then_error(|| {
        aws_sdk_sns::operation::publish::PublishError::generic(crate::testing::aws_error(
            "KMSDisabled",
            "KMS key is disabled.",
        ))
    });
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
    let reporter = crate::testing::reporter(client, "test");
    let executed = Executor::new(&reporter, false)
        .execute(
            &subject(),
            vec![tell(), tell()],
            |_, step: Step| async move {
                match step {
                    Step::Tell(r) => Ok(r.ran()),
                    _ => unreachable!(),
                }
            },
        )
        .await;
    assert_eq!(executed.results.len(), 2);
    assert!(executed.into_result().is_ok());
}

/// The handlers' "report a failed read, then fail the event" in one call: a success
/// passes through untold, a failure is reported once and still fails the event.
#[tokio::test]
async fn failing_reports_a_failure_and_passes_the_result_on() {
    let sent = Arc::new(Mutex::new(vec![]));
    let (reporter, _rule) = reporter(sent.clone());
    let ok: Result<u8> = Ok(7);
    assert_eq!(
        reporter.failing(&subject(), "observe", ok).await.unwrap(),
        7
    );
    assert!(sent.lock().unwrap().is_empty());
    let failed: Result<u8> = Err(Error::BadEvent("no".into()));
    assert!(reporter
        .failing(&subject(), "observe", failed)
        .await
        .is_err());
    assert_eq!(*sent.lock().unwrap(), ["observe failed"]);
}
