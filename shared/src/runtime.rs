//! The Lambda entry shared by every function. An event arrives either directly from
//! EventBridge or inside an SQS batch; both become [`Envelope`]s for the function's
//! handler. SQS batches answer with partial batch failures so only the records that
//! failed are redelivered (and, after the queue's maxReceiveCount, dead-lettered).
//!
//! In single-account mode an event stamped with another account or region than the
//! function's own is skipped (logged, not retried, never acted on): only this account's
//! resources are ours, and an event bus rule or a queue shared by mistake must not make
//! us act on names that merely look the same here. In hub mode (`ACCOUNTS`) an event
//! from a listed account is handled in that account's scope, and one from any other
//! account is skipped the same way (see [`crate::tenancy`]).

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::aws::Clients;
use crate::error::Error;
use crate::events::Envelope;
use crate::tenancy::{Accounts, Scope, Skip};

/// A function as the runtime sees it, implemented by its configuration: how it is read
/// from the environment, what the function acts through beside the [`Clients`] every
/// function has, and its handler, which borrows its [`Deps`] (as the Lambda runtime's own
/// examples do). `shared::function!` writes the impl; the function's `main` is
/// `run::<Config>()`.
pub trait Function: Clone + Send + Sync + Sized + 'static {
    /// What only this function uses (its own queue, SSM, ...); `()` for nothing.
    type Own: Send + Sync + 'static;
    /// The function's settings from the environment; a bad value fails the cold start.
    fn configure(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError>;
    /// The settings every function has.
    fn common(&self) -> &crate::config::Common;
    /// The function's own adapters in one account and Region.
    fn own(&self, aws: &crate::aws::Aws) -> Self::Own;
    /// Payloads that are neither EventBridge events nor SQS batches, as events (`None`:
    /// not such a payload).
    fn translate(_payload: &Value) -> Option<Result<Vec<Envelope>, Error>> {
        None
    }
    /// One event, admitted by the accounts policy, in its account's scope.
    fn handle(
        deps: &Deps<Self>,
        event: Envelope,
    ) -> impl Future<Output = Result<(), Error>> + Send + '_;
}

/// Everything a handler needs from the world in one account and Region: the function's
/// settings, the adapters every function acts through and its own. Built once per cold
/// start for the function's own account, and on first use for a member account (see
/// [`crate::tenancy::Fleet`]).
pub struct Deps<F: Function> {
    pub config: F,
    pub aws: Clients,
    pub own: F::Own,
}

impl<F: Function> Deps<F> {
    pub fn new(aws: &crate::aws::Aws, config: &F) -> Self {
        Deps {
            aws: aws.clients(config.common()),
            own: config.own(aws),
            config: config.clone(),
        }
    }
}

/// Names a function's parts for the runtime, in the function's `lib.rs`:
/// `shared::function!(Config, Own, own, handle);` where `Config` has `from_env` and a
/// `common` field, `own(aws, config) -> Own` builds what only this function uses and
/// `handle(&Deps<Config>, Envelope)` is its handler; `translate = path` optionally turns
/// payloads that are not events into events.
#[macro_export]
macro_rules! function {
    ($config:ty, $own_ty:ty, $own:path, $handle:path $(, translate = $translate:path)?) => {
        impl $crate::runtime::Function for $config {
            type Own = $own_ty;
            fn configure(
                env: &$crate::config::Env,
            ) -> ::std::result::Result<$config, $crate::config::ConfigError> {
                <$config>::from_env(env)
            }
            fn common(&self) -> &$crate::config::Common {
                &self.common
            }
            fn own(&self, aws: &$crate::aws::Aws) -> $own_ty {
                $own(aws, self)
            }
            $(
            fn translate(
                payload: &::serde_json::Value,
            ) -> ::std::option::Option<
                ::std::result::Result<::std::vec::Vec<$crate::events::Envelope>, $crate::Error>,
            > {
                $translate(payload)
            }
            )?
            fn handle(
                deps: &$crate::runtime::Deps<$config>,
                event: $crate::events::Envelope,
            ) -> impl ::std::future::Future<Output = $crate::Result<()>> + Send + '_ {
                $handle(deps, event)
            }
        }
    };
}

/// For a function that uses nothing beyond [`Clients`].
pub fn nothing<C>(_aws: &crate::aws::Aws, _config: &C) {}

/// A function's whole `main`: tracing, its configuration (from the process environment;
/// a bad value fails the cold start, logged), the SDK configuration, then [`serve`].
pub async fn run<F: Function>() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = F::configure(&crate::config::Env::process())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let aws = crate::aws::Aws::load().await;
    serve::<F>(aws, config).await
}

/// The composition root's loop: every event the accounts policy admits reaches
/// [`Function::handle`] on the dependencies of its scope.
pub async fn serve<F: Function>(
    aws: crate::aws::Aws,
    config: F,
) -> Result<(), lambda_runtime::Error> {
    let common = config.common().clone();
    let fleet = crate::tenancy::Fleet::new(
        aws,
        common.function,
        common.tenancy.clone(),
        move |aws: &crate::aws::Aws| Deps::new(aws, &config),
    );
    crate::coldstart::report("clients");
    // Borrowed by every invocation: the loop runs until the process ends.
    let (fleet, common) = (&fleet, &common);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let home = Home::of(&event.context, &common.tenancy.accounts);
        let deadline = Deadline::of(&event.context);
        let scoped = |event: Envelope| {
            // Boxed: the handler's future nests deep enough to overflow the compiler's
            // layout query limit in the functions' binaries otherwise.
            let work: std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send + '_>> =
                Box::pin(async move {
                    let deps = match fleet.current().await {
                        Ok(deps) => deps,
                        Err(e) => {
                            // For an account the function can't reach (its member role):
                            // the hub's reporter is built only then, so the cold start
                            // builds no client for it.
                            let reporter = fleet.aws().reporter(common);
                            unreachable_account(&reporter, &event, &e).await;
                            return Err(e);
                        }
                    };
                    F::handle(&deps, event).await
                });
            work
        };
        match F::translate(&event.payload) {
            None => deliver_before(event.payload, &home, Some(deadline), scoped).await,
            Some(translated) => dispatch_all(translated, &home, scoped).await,
        }
    }))
    .await
}

/// Tells people that an account `ACCOUNTS` names can't be reached (its member role is
/// missing, or its trust doesn't let the hub in): the event fails, is retried and then
/// dead-lettered, and nothing in that account is looked at until the role works.
async fn unreachable_account(reporter: &crate::notify::Reporter, event: &Envelope, e: &Error) {
    let subject = crate::notify::Subject::of(&event.id, "member-account");
    reporter.failure(&subject, "assume-role", e).await;
}

/// What one SQS record may need: the SDK's per-operation timeout (40 s, see
/// `aws::sdk_config`), i.e. one AWS call retried to its limit. A record usually takes
/// well under a second; this is the worst case a record started now must still fit.
pub const RECORD_BUDGET: Duration = Duration::from_secs(40);

/// When the invocation times out, and what a record needs before it. A record that
/// can't fit is handed back untried (a batch item failure) rather than started: a
/// timeout would return the whole batch, records already done included, and every
/// return counts towards the queue's maxReceiveCount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: SystemTime,
    pub budget: Duration,
}

impl Deadline {
    fn of(context: &lambda_runtime::Context) -> Self {
        Deadline {
            at: context.deadline(),
            budget: RECORD_BUDGET,
        }
    }

    /// The time left, when it is too little to start another record after `taken` were
    /// started. The first record is always taken, so a batch always makes progress
    /// (even under a function timeout shorter than the budget).
    pub fn hand_back(&self, now: SystemTime, taken: usize) -> Option<Duration> {
        let left = self.at.duration_since(now).unwrap_or_default();
        (taken > 0 && left < self.budget).then_some(left)
    }
}

/// The account and region the function runs in; `None` when unknown (then nothing is
/// skipped for it). With the accounts it serves besides its own (hub mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Home {
    pub account: Option<String>,
    pub region: Option<String>,
    pub accounts: Accounts,
}

impl Home {
    /// From the invoked function's ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`)
    /// and `AWS_REGION`, which Lambda always sets (the ARN's region is the fallback).
    pub fn from_arn(function_arn: &str, aws_region: Option<String>) -> Self {
        let part = |n: usize| {
            function_arn
                .split(':')
                .nth(n)
                .filter(|p| !p.is_empty() && function_arn.starts_with("arn:"))
                .map(str::to_string)
        };
        Home {
            account: part(4),
            region: aws_region.filter(|r| !r.is_empty()).or_else(|| part(3)),
            accounts: Accounts::Single,
        }
    }

    /// The same home serving `accounts` too (hub mode).
    pub fn serving(self, accounts: &Accounts) -> Self {
        Home {
            accounts: accounts.clone(),
            ..self
        }
    }

    fn of(context: &lambda_runtime::Context, accounts: &Accounts) -> Self {
        Home::from_arn(
            &context.invoked_function_arn,
            std::env::var("AWS_REGION").ok(),
        )
        .serving(accounts)
    }
}

/// Why `event` is not ours to act on (see [`crate::tenancy::admit`]).
pub fn elsewhere(event: &Envelope, home: &Home) -> Option<String> {
    admit(event, home).err().map(|skip| skip.reason)
}

fn admit(event: &Envelope, home: &Home) -> Result<Scope, Skip> {
    crate::tenancy::admit(
        event,
        home.account.as_deref(),
        home.region.as_deref(),
        &home.accounts,
    )
}

/// Hands `event` to `handler` unless it belongs to another account or region, which is
/// an explicit skip: logged, answered as success (a retry cannot make it ours).
async fn dispatch<H, Fut>(
    event: Envelope,
    home: &Home,
    message_id: Option<&str>,
    handler: &H,
) -> Result<(), Error>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let scope = match admit(&event, home) {
        Ok(scope) => scope,
        Err(skip) => {
            let (account, region) = crate::tenancy::stamped(&event);
            tracing::warn!(
                message_id = message_id.unwrap_or(""),
                event_id = %event.id,
                detail_type = %event.detail_type,
                account = %account,
                region = %region,
                reason = %skip.reason,
                "{}",
                skip.log
            );
            return Ok(());
        }
    };
    tracing::debug!(
        message_id = message_id.unwrap_or(""),
        event_id = %event.id,
        detail_type = %event.detail_type,
        account = scope.account.as_deref().unwrap_or(""),
        region = scope.region.as_deref().unwrap_or(""),
        "dispatching"
    );
    let id = event.id.clone();
    crate::tenancy::within(scope, handler(event))
        .await
        .inspect_err(|e| log_failure(message_id, Some(&id), e))
}

/// Dispatches one invocation payload to `handler`, with no deadline.
pub async fn deliver<H, Fut>(payload: Value, home: &Home, handler: H) -> Result<Value, Error>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    deliver_before(payload, home, None, handler).await
}

/// Dispatches one invocation payload to `handler`; in an SQS batch, records that can't
/// fit before `deadline` are handed back untried (see [`Deadline`]).
pub async fn deliver_before<H, Fut>(
    payload: Value,
    home: &Home,
    deadline: Option<Deadline>,
    handler: H,
) -> Result<Value, Error>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    if payload.get("Records").is_none() {
        let event = Envelope::parse(payload).inspect_err(|e| log_failure(None, None, e))?;
        dispatch(event, home, None, &handler).await?;
        return Ok(serde_json::json!({}));
    }
    let batch: SqsEvent = serde_json::from_value(payload)
        .map_err(|e| Error::BadEvent(format!("Records present but not an SQS event: {e}")))
        .inspect_err(|e| log_failure(None, None, e))?;
    let mut failures = vec![];
    for (taken, record) in batch.records.into_iter().enumerate() {
        let message_id = record.message_id.clone().unwrap_or_default();
        let short = deadline.and_then(|d| Some((d.hand_back(SystemTime::now(), taken)?, d.budget)));
        let failed = if let Some((left, budget)) = short {
            tracing::warn!(
                message_id = %message_id,
                remaining_ms = left.as_millis() as u64,
                budget_ms = budget.as_millis() as u64,
                "handed back: no time for another record"
            );
            true
        } else {
            match Envelope::parse_str(record.body.as_deref().unwrap_or_default()) {
                Ok(event) => dispatch(event, home, Some(&message_id), &handler)
                    .await
                    .is_err(),
                Err(e) => {
                    log_failure(Some(&message_id), None, &e);
                    true
                }
            }
        };
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(serde_json::to_value(response).expect("a batch response serializes"))
}

fn log_failure(message_id: Option<&str>, event_id: Option<&str>, e: &Error) {
    tracing::error!(
        message_id = message_id.unwrap_or(""),
        event_id = event_id.unwrap_or(""),
        retryable = e.is_retryable(),
        error = %e,
        "event failed; it will be retried and then dead-lettered"
    );
}

/// Structured JSON logs on stderr-free stdout, level from [`log_directive`].
pub fn init_tracing() {
    crate::coldstart::mark("start");
    let directive = log_directive(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .init();
    crate::coldstart::mark("tracing");
}

/// The tracing filter: `RUST_LOG` when set, else Lambda's application log level
/// (`AWS_LAMBDA_LOG_LEVEL`, set from LoggingConfig.ApplicationLogLevel), else info.
/// With the JSON log format Lambda itself drops lines below its application log level
/// (by each line's `level` key, INFO unless configured), so the two must agree: the
/// template sets both from one parameter.
pub fn log_directive(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    let set = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    set(rust_log)
        .or_else(|| {
            set(lambda_level).map(|level| match level.to_ascii_lowercase().as_str() {
                "fatal" => "error".to_string(),
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| "info".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    fn event(id: &str) -> Value {
        json!({"id": id, "detail-type": "T", "source": "s", "time": "2024-01-01T00:00:00Z", "detail": {}})
    }

    fn sqs(bodies: &[String]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(
                |(n, b)| json!({"messageId": format!("m{n}"), "body": b, "eventSource": "aws:sqs"}),
            )
            .collect();
        json!({ "Records": records })
    }

    type Seen = Arc<Mutex<Vec<String>>>;
    type Handled = std::pin::Pin<Box<dyn Future<Output = Result<(), Error>>>>;

    /// A handler that records the ids it was given and fails the event "bad".
    fn recording() -> (Seen, impl Fn(Envelope) -> Handled) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let handler = move |e: Envelope| -> Handled {
            s.lock().unwrap().push(e.id.clone());
            Box::pin(async move {
                if e.id == "bad" {
                    Err(Error::BadEvent("nope".into()))
                } else {
                    Ok(())
                }
            })
        };
        (seen, handler)
    }

    #[tokio::test]
    async fn sqs_batches_report_only_the_failed_records() {
        let (seen, handler) = recording();
        let payload = sqs(&[
            event("a").to_string(),
            "{not json".into(),
            event("bad").to_string(),
        ]);
        let out = deliver(payload, &Home::default(), handler).await.unwrap();
        assert_eq!(failed_ids(&out), ["m1", "m2"]);
        assert_eq!(*seen.lock().unwrap(), ["a", "bad"]);
    }

    #[tokio::test]
    async fn direct_events_fail_the_invocation() {
        let handler = |_e: Envelope| async { Err(Error::BadEvent("x".into())) };
        assert!(deliver(event("a"), &Home::default(), handler)
            .await
            .is_err());
        let ok = |_e: Envelope| async { Ok(()) };
        assert!(deliver(json!({"not": "an event"}), &Home::default(), ok)
            .await
            .is_err());
        assert_eq!(
            deliver(event("a"), &Home::default(), ok).await.unwrap(),
            json!({})
        );
    }

    const START: SystemTime = SystemTime::UNIX_EPOCH;

    fn deadline_after(from: SystemTime, seconds: u64) -> Deadline {
        Deadline {
            at: from + Duration::from_secs(seconds),
            budget: RECORD_BUDGET,
        }
    }

    fn failed_ids(out: &Value) -> Vec<&str> {
        out["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_record_is_taken_only_while_its_budget_fits_before_the_deadline() {
        let start = START;
        let d = deadline_after(start, 60);
        assert_eq!(d.hand_back(start, 1), None);
        assert_eq!(d.hand_back(start + Duration::from_secs(20), 5), None);
        assert_eq!(
            d.hand_back(start + Duration::from_secs(21), 5),
            Some(Duration::from_secs(39))
        );
        assert_eq!(
            d.hand_back(start + Duration::from_secs(90), 1),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_first_record_is_always_taken_so_a_batch_makes_progress() {
        let start = START;
        let d = deadline_after(start, 5);
        assert_eq!(d.hand_back(start, 0), None);
        assert_eq!(d.hand_back(start + Duration::from_secs(9), 0), None);
    }

    #[tokio::test]
    async fn records_past_the_deadline_are_handed_back_untried() {
        let (seen, handler) = recording();
        let payload = sqs(&[
            event("a").to_string(),
            event("b").to_string(),
            event("c").to_string(),
        ]);
        let soon = deadline_after(SystemTime::now(), 10);
        let out = deliver_before(payload.clone(), &Home::default(), Some(soon), &handler)
            .await
            .unwrap();
        assert_eq!(failed_ids(&out), ["m1", "m2"]);
        assert_eq!(*seen.lock().unwrap(), ["a"]);
        let ample = deadline_after(SystemTime::now(), 300);
        let out = deliver_before(payload, &Home::default(), Some(ample), &handler)
            .await
            .unwrap();
        assert!(failed_ids(&out).is_empty());
        assert_eq!(*seen.lock().unwrap(), ["a", "a", "b", "c"]);
    }

    #[test]
    fn the_log_level_is_rust_log_else_lambdas_application_level_else_info() {
        assert_eq!(log_directive(Some("debug"), Some("INFO")), "debug");
        assert_eq!(log_directive(None, Some("DEBUG")), "debug");
        assert_eq!(log_directive(Some(" "), Some("TRACE")), "trace");
        assert_eq!(log_directive(None, Some("FATAL")), "error");
        assert_eq!(log_directive(None, None), "info");
        for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] {
            assert!(
                tracing_subscriber::EnvFilter::try_new(level).is_ok(),
                "{level}"
            );
        }
    }

    fn home() -> Home {
        Home::from_arn(
            "arn:aws:lambda:eu-west-1:111122223333:function:f",
            Some("eu-west-1".into()),
        )
    }

    fn stamped(account: &str, region: &str) -> Envelope {
        Envelope {
            account: account.into(),
            region: region.into(),
            ..crate::testing::event("T", "s", json!({}))
        }
    }

    #[tokio::test]
    async fn a_huge_field_in_a_bad_event_is_not_echoed_whole() {
        let quoting = |e: Envelope| async move {
            Err(Error::BadEvent(format!(
                "{:?} is not an instance id",
                e.detail
            )))
        };
        let mut e = event("x");
        e["detail"] = json!("y".repeat(100_000));
        let err = deliver(e, &Home::default(), quoting).await.unwrap_err();
        assert!(err.to_string().len() < 2_000, "{}", err.to_string().len());
    }

    #[test]
    fn home_is_read_from_the_function_arn_and_aws_region() {
        assert_eq!(home().account.as_deref(), Some("111122223333"));
        assert_eq!(home().region.as_deref(), Some("eu-west-1"));
        let fallback = Home::from_arn("arn:aws:lambda:us-west-2:1:function:f", None);
        assert_eq!(fallback.region.as_deref(), Some("us-west-2"));
        assert_eq!(Home::from_arn("", None), Home::default());
        assert_eq!(Home::from_arn("not-an-arn:a:b:c:d", None), Home::default());
    }

    #[test]
    fn events_for_another_account_or_region_are_elsewhere() {
        assert!(elsewhere(&stamped("111122223333", "eu-west-1"), &home()).is_none());
        let other_account = elsewhere(&stamped("999999999999", "eu-west-1"), &home()).unwrap();
        assert!(
            other_account.contains("account 999999999999"),
            "{other_account}"
        );
        let other_region = elsewhere(&stamped("111122223333", "us-east-1"), &home()).unwrap();
        assert!(other_region.contains("region us-east-1"), "{other_region}");
    }

    #[test]
    fn missing_stamps_or_an_unknown_home_are_not_elsewhere() {
        assert!(elsewhere(&stamped("", ""), &home()).is_none());
        assert!(elsewhere(&stamped("999999999999", "us-east-1"), &Home::default()).is_none());
    }

    #[tokio::test]
    async fn a_foreign_event_is_skipped_not_failed_and_never_reaches_the_handler() {
        let reached = Arc::new(Mutex::new(0));
        let r = reached.clone();
        let handler = move |_e: Envelope| {
            let r = r.clone();
            async move {
                *r.lock().unwrap() += 1;
                Ok(())
            }
        };
        let mut foreign = event("x");
        foreign["account"] = json!("999999999999");
        assert_eq!(
            deliver(foreign.clone(), &home(), &handler).await.unwrap(),
            json!({})
        );
        let out = deliver(sqs(&[foreign.to_string()]), &home(), &handler)
            .await
            .unwrap();
        assert!(out["batchItemFailures"].as_array().unwrap().is_empty());
        assert_eq!(*reached.lock().unwrap(), 0);
        let mut ours = event("y");
        ours["account"] = json!("111122223333");
        deliver(ours, &home(), &handler).await.unwrap();
        assert_eq!(*reached.lock().unwrap(), 1);
    }
}

/// The dispatch of a translated payload, separate so it can be tested without a runtime.
pub async fn deliver_translated<T, H, Fut>(
    payload: Value,
    home: &Home,
    translate: T,
    handler: H,
) -> Result<Value, Error>
where
    T: Fn(&Value) -> Option<Result<Vec<Envelope>, Error>>,
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    match translate(&payload) {
        None => deliver(payload, home, handler).await,
        Some(translated) => dispatch_all(translated, home, handler).await,
    }
}

async fn dispatch_all<H, Fut>(
    translated: Result<Vec<Envelope>, Error>,
    home: &Home,
    handler: H,
) -> Result<Value, Error>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    for event in translated.inspect_err(|e| log_failure(None, None, e))? {
        dispatch(event, home, None, &handler).await?;
    }
    Ok(serde_json::json!({}))
}

#[cfg(test)]
mod translating_tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn translated_payloads_reach_the_handler_and_others_go_through_deliver() {
        let translate = |v: &Value| {
            v.get("sns").map(|_| {
                Envelope::parse(json!({"id": "from-sns", "detail-type": "T", "source": "s",
                    "time": "2024-01-01T00:00:00Z"}))
                .map(|e| vec![e])
            })
        };
        let handler = |e: Envelope| async move {
            if e.id == "from-sns" || e.id == "direct" {
                Ok(())
            } else {
                Err(Error::BadEvent(e.id))
            }
        };
        assert_eq!(
            deliver_translated(json!({"sns": 1}), &Home::default(), translate, handler)
                .await
                .unwrap(),
            json!({})
        );
        let direct = json!({"id": "direct", "detail-type": "T", "source": "s", "time": "2024-01-01T00:00:00Z"});
        assert!(
            deliver_translated(direct, &Home::default(), translate, handler)
                .await
                .is_ok()
        );
        let failing = |_e: Envelope| async { Err(Error::BadEvent("x".into())) };
        assert!(
            deliver_translated(json!({"sns": 1}), &Home::default(), translate, failing)
                .await
                .is_err()
        );
    }
}
