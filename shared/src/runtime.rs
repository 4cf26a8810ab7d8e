//! The Lambda entry shared by every function. An event arrives either directly from
//! EventBridge or inside an SQS batch; both become [`Envelope`]s for the function's
//! handler. SQS batches answer with partial batch failures so only the records that
//! failed are redelivered (and, after the queue's maxReceiveCount, dead-lettered).

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::error::Error;
use crate::events::Envelope;

/// Runs the Lambda runtime loop with `handler` for every event.
pub async fn serve<H, Fut>(handler: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(Envelope) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move { deliver(event.payload, handler).await }
    }))
    .await
}

/// Dispatches one invocation payload to `handler`.
pub async fn deliver<H, Fut>(payload: Value, handler: H) -> Result<Value, Error>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    if payload.get("Records").is_none() {
        let event = Envelope::parse(payload).inspect_err(|e| log_failure(None, None, e))?;
        let id = event.id.clone();
        handler(event)
            .await
            .inspect_err(|e| log_failure(None, Some(&id), e))?;
        return Ok(serde_json::json!({}));
    }
    let batch: SqsEvent = serde_json::from_value(payload)
        .map_err(|e| Error::BadEvent(format!("Records present but not an SQS event: {e}")))
        .inspect_err(|e| log_failure(None, None, e))?;
    let mut failures = vec![];
    for record in batch.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let outcome = match Envelope::parse_str(record.body.as_deref().unwrap_or_default()) {
            Ok(event) => {
                let id = event.id.clone();
                handler(event)
                    .await
                    .inspect_err(|e| log_failure(Some(&message_id), Some(&id), e))
            }
            Err(e) => {
                log_failure(Some(&message_id), None, &e);
                Err(e)
            }
        };
        if outcome.is_err() {
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

/// Structured JSON logs on stderr-free stdout, level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
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

    #[tokio::test]
    async fn sqs_batches_report_only_the_failed_records() {
        let seen = Arc::new(Mutex::new(vec![]));
        let s = seen.clone();
        let handler = move |e: Envelope| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(e.id.clone());
                if e.id == "bad" {
                    Err(Error::BadEvent("nope".into()))
                } else {
                    Ok(())
                }
            }
        };
        let payload = sqs(&[
            event("a").to_string(),
            "{not json".into(),
            event("bad").to_string(),
        ]);
        let out = deliver(payload, handler).await.unwrap();
        let ids: Vec<&str> = out["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["m1", "m2"]);
        assert_eq!(*seen.lock().unwrap(), ["a", "bad"]);
    }

    #[tokio::test]
    async fn direct_events_fail_the_invocation() {
        let handler = |_e: Envelope| async { Err(Error::BadEvent("x".into())) };
        assert!(deliver(event("a"), handler).await.is_err());
        let ok = |_e: Envelope| async { Ok(()) };
        assert!(deliver(json!({"not": "an event"}), ok).await.is_err());
        assert_eq!(deliver(event("a"), ok).await.unwrap(), json!({}));
    }
}

/// Like [`serve`], but each payload is first offered to `translate`, which turns shapes
/// [`deliver`] does not know into envelopes (an SNS-triggered invocation also carries
/// `Records`, which `deliver` would read as an SQS batch). `None` hands it to `deliver`.
/// Translated events fail the invocation on the first error, like direct events.
pub async fn serve_translating<T, H, Fut>(
    translate: T,
    handler: H,
) -> Result<(), lambda_runtime::Error>
where
    T: Fn(&Value) -> Option<Result<Vec<Envelope>, Error>> + Clone + Send + 'static,
    H: Fn(Envelope) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        let translate = translate.clone();
        async move { deliver_translated(event.payload, translate, handler).await }
    }))
    .await
}

/// The dispatch of [`serve_translating`], separate so it can be tested without a runtime.
pub async fn deliver_translated<T, H, Fut>(
    payload: Value,
    translate: T,
    handler: H,
) -> Result<Value, Error>
where
    T: Fn(&Value) -> Option<Result<Vec<Envelope>, Error>>,
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let Some(translated) = translate(&payload) else {
        return deliver(payload, handler).await;
    };
    for event in translated.inspect_err(|e| log_failure(None, None, e))? {
        let id = event.id.clone();
        handler(event)
            .await
            .inspect_err(|e| log_failure(None, Some(&id), e))?;
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
            deliver_translated(json!({"sns": 1}), translate, handler)
                .await
                .unwrap(),
            json!({})
        );
        let direct = json!({"id": "direct", "detail-type": "T", "source": "s", "time": "2024-01-01T00:00:00Z"});
        assert!(deliver_translated(direct, translate, handler).await.is_ok());
        let failing = |_e: Envelope| async { Err(Error::BadEvent("x".into())) };
        assert!(deliver_translated(json!({"sns": 1}), translate, failing)
            .await
            .is_err());
    }
}
