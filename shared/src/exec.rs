//! The one executor: carries out any function's plan, step by step, through that
//! function's adapter (`run`), and reports what each step did.
//!
//! Every function decides a plan (data) and hands it here; what differs between them is
//! said by each step ([`PlanStep`]), not by a loop of their own:
//! - **Dry run has one meaning.** A step that [`PlanStep::mutates`] (changes anything in
//!   AWS: a host, a task, a service, a group, a tag, a queue message, a lifecycle action)
//!   is not run. [`PlanStep::dry_run`] says what happens instead: a `planned` report, a
//!   log line, or another step in its place (releasing a lifecycle action with CONTINUE,
//!   so a dry run never holds an instance longer than the group would without us). Steps
//!   that change nothing (reports, skips) run as usual.
//! - **Failure policy is named per step** ([`OnFailure`]).
//! - **One report per step** that has something to tell ([`Ran::notice`]); a failure is
//!   reported too when the executor is asked to ([`Executor::reporting_failures`]).

use std::future::Future;

use serde::Serialize;

pub use crate::notify::About;
use crate::notify::{Notice, Outcome, Reporter, Subject};
use crate::{Error, Result};

/// One name per action across functions: what notifications, metrics and logs call a
/// step, whichever function takes it.
pub mod action {
    // Hosts (container instances and their EC2 instances).
    /// A container instance set DRAINING.
    pub const DRAIN_HOST: &str = "drain-host";
    /// A container instance set back to ACTIVE.
    pub const REACTIVATE: &str = "reactivate";
    pub const ISOLATE_NETWORK: &str = "isolate-network";
    pub const SNAPSHOT_HOST: &str = "snapshot-host";
    pub const TAG_HOST: &str = "tag-host";
    pub const PROTECT_HOST: &str = "protect-host";
    pub const DETACH_HOST: &str = "detach-host";
    pub const REPLACE_INSTANCE: &str = "replace-instance";
    // Tasks and services.
    pub const STOP_TASK: &str = "stop-task";
    /// Several tasks of one service, stopped in one step.
    pub const STOP_TASKS: &str = "stop-tasks";
    pub const REDEPLOY_SERVICE: &str = "redeploy-service";
    // Groups and their lifecycle actions.
    pub const COMPLETE_LIFECYCLE: &str = "complete-lifecycle";
    /// The event sent back to its queue to be looked at again.
    pub const RECHECK: &str = "recheck";
    pub const ROLLOUT: &str = "rollout";
    pub const WINDOW_HALT: &str = "window-halt";
    /// A group tagged with the refresh already reported (bookkeeping).
    pub const MARK_REPORTED: &str = "mark-reported";
}

/// What the executor needs to know of a function's step.
pub trait PlanStep: Serialize + Sized {
    /// The step's action name (see [`action`] for the names several functions share).
    fn action(&self) -> &'static str;
    /// Whether carrying it out changes anything in AWS. The dry-run question: a step that
    /// mutates is not run in dry run.
    fn mutates(&self) -> bool;
    /// What a dry run does with this (mutating) step instead of running it.
    fn dry_run(self) -> DryRun<Self> {
        DryRun::Planned(None)
    }
    /// What a failure of this step means for the plan.
    fn on_failure(&self) -> OnFailure {
        OnFailure::Stop
    }
    /// Whether the step still runs once an earlier step failed (under
    /// [`OnFailure::Continue`]); bookkeeping that must only follow a clean run says no.
    fn runs_after_failure(&self) -> bool {
        true
    }
    /// The event's subject narrowed to what this step is about.
    fn about(&self, event: &Subject) -> Subject {
        event.clone()
    }
}

/// What a dry run does with a step that mutates.
#[derive(Debug, Clone, PartialEq)]
pub enum DryRun<S> {
    /// Not run: reported as `planned` with this notice, or only logged without one.
    Planned(Option<Notice>),
    /// Not run; this step runs in its place.
    Instead(S),
}

/// A step's failure policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The plan ends here and the event fails (what follows depends on this step).
    Stop,
    /// The rest of the plan runs (it doesn't depend on this step), then the event fails
    /// with the first error, so it is retried.
    Continue,
    /// Best effort: recorded as a warning, the plan goes on and the event doesn't fail.
    Tolerate,
}

/// What a step did, as its adapter saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    pub outcome: Outcome,
    /// What to tell people about it; `None`: nothing (bookkeeping, log-only steps).
    pub notice: Option<Notice>,
    /// What the step made (ids of snapshots, versions, ...).
    pub made: Vec<String>,
}

impl Ran {
    /// Done, with nothing to tell.
    pub fn quiet(outcome: Outcome) -> Self {
        Ran {
            outcome,
            notice: None,
            made: vec![],
        }
    }

    /// Done, and `notice` tells people.
    pub fn told(outcome: Outcome, notice: Notice) -> Self {
        Ran {
            outcome,
            notice: Some(notice),
            made: vec![],
        }
    }

    pub fn made(mut self, made: Vec<String>) -> Self {
        self.made = made;
        self
    }
}

/// One step as it turned out.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub action: &'static str,
    pub outcome: Outcome,
    /// The subject narrowed to the step (see [`PlanStep::about`]).
    pub subject: Subject,
    /// Why it failed (`failed`, or `warning` for a tolerated failure).
    pub error: Option<String>,
    pub made: Vec<String>,
}

/// A plan as it turned out: every step tried, and the failure that fails the event.
#[derive(Debug)]
pub struct Executed {
    pub results: Vec<StepResult>,
    pub failure: Option<Error>,
}

impl Executed {
    pub fn into_result(self) -> Result<()> {
        self.failure.map_or(Ok(()), Err)
    }
}

/// The step that only tells people: the same in every function's plan. What it says is
/// a worded [`Notice`], or, for a function that words its whole response in one
/// notification afterwards (guardduty-responder), the typed reason it words it from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report<N = Notice> {
    pub action: &'static str,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "is_nothing")]
    pub about: About,
    pub notice: N,
}

fn is_nothing(about: &About) -> bool {
    about == &About::default()
}

impl Report {
    /// Sent as it is.
    pub fn ran(self) -> Ran {
        Ran::told(self.outcome, self.notice)
    }
}

/// Runs plans for one function.
pub struct Executor<'a> {
    reporter: &'a Reporter,
    dry_run: bool,
    report_failures: bool,
}

impl<'a> Executor<'a> {
    /// `dry_run` from the function's configuration (`DRY_RUN`).
    pub fn new(reporter: &'a Reporter, dry_run: bool) -> Self {
        Executor {
            reporter,
            dry_run,
            report_failures: false,
        }
    }

    /// Each failed step is also reported (a `failed` notification naming its action).
    pub fn reporting_failures(mut self) -> Self {
        self.report_failures = true;
        self
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Logs the plan once, then runs it step by step through `run` (the function's
    /// adapter for one step), with dry run and failures as the steps say.
    pub async fn execute<S, F, Fut>(&self, subject: &Subject, plan: Vec<S>, mut run: F) -> Executed
    where
        S: PlanStep,
        F: FnMut(Subject, S) -> Fut,
        Fut: Future<Output = Result<Ran>>,
    {
        tracing::info!(
            event_id = %subject.event_id,
            kind = %subject.kind,
            dry_run = self.dry_run,
            steps = plan.len(),
            plan = %serde_json::to_string(&plan).unwrap_or_default(),
            "decided"
        );
        let mut executed = Executed {
            results: vec![],
            failure: None,
        };
        for step in plan {
            let action = step.action();
            let about = step.about(subject);
            let policy = step.on_failure();
            if executed.failure.is_some() && !step.runs_after_failure() {
                tracing::info!(event_id = %subject.event_id, action, "skipped: an earlier step failed");
                executed
                    .results
                    .push(result(action, Outcome::Skipped, about, None, vec![]));
                continue;
            }
            let step = match self.dry_run && step.mutates() {
                false => step,
                true => match step.dry_run() {
                    DryRun::Instead(other) => other,
                    DryRun::Planned(notice) => {
                        tracing::info!(event_id = %subject.event_id, action, "dry run: planned, not run");
                        if let Some(notice) = notice {
                            self.reporter
                                .report(&about, action, Outcome::Planned, notice)
                                .await;
                        }
                        executed.results.push(result(
                            action,
                            Outcome::Planned,
                            about,
                            None,
                            vec![],
                        ));
                        continue;
                    }
                },
            };
            // A step run in another's place goes by its own name.
            let action = step.action();
            match run(about.clone(), step).await {
                Ok(ran) => {
                    if let Some(notice) = ran.notice {
                        self.reporter
                            .report(&about, action, ran.outcome, notice)
                            .await;
                    }
                    executed
                        .results
                        .push(result(action, ran.outcome, about, None, ran.made));
                }
                Err(e) => {
                    if self.report_failures {
                        self.reporter.failure(&about, action, &e).await;
                    }
                    let why = Some(e.to_string());
                    if policy == OnFailure::Tolerate {
                        tracing::warn!(event_id = %subject.event_id, action, error = %e, "step failed; the plan goes on without it");
                        executed
                            .results
                            .push(result(action, Outcome::Warning, about, why, vec![]));
                        continue;
                    }
                    executed
                        .results
                        .push(result(action, Outcome::Failed, about, why, vec![]));
                    executed.failure.get_or_insert(e);
                    if policy == OnFailure::Stop {
                        break;
                    }
                }
            }
        }
        executed
    }
}

fn result(
    action: &'static str,
    outcome: Outcome,
    subject: Subject,
    error: Option<String>,
    made: Vec<String>,
) -> StepResult {
    StepResult {
        action,
        outcome,
        subject,
        error,
        made,
    }
}

#[cfg(test)]
mod tests;
