//! A lifecycle look's first write, the heartbeat, and the quick retry of a look that
//! failed after it: the two things that keep an action alive whatever the reads do.

use shared::aws::autoscaling::HookOutcome;
use shared::events::autoscaling::LifecycleAction;
use shared::events::Envelope;
use shared::notify::Subject;
use shared::Result;

use crate::config::FUNCTION;
use crate::decide::Beat;
use crate::parse::Progress;
use crate::{act, Deps};

/// Looks in a row that may fail after their heartbeat and be re-queued quickly; the
/// next failure goes through the queue's redrive (and, in the end, its DLQ).
pub const MAX_FAILED_LOOKS: u32 = 3;
/// Delay before a look that failed after its heartbeat is tried again.
pub const RETRY_DELAY_SECONDS: u32 = 10;

/// The first write of every look: it needs only the event, so no failed read can keep
/// the action from being kept alive. A failure is logged and the look goes on.
pub async fn send(deps: &Deps, action: &LifecycleAction) -> Beat {
    if deps.config.common.dry_run {
        return Beat::Unknown;
    }
    match deps.aws.asg.record_heartbeat(action).await {
        Ok(HookOutcome::Done) => Beat::Alive,
        Ok(HookOutcome::NoActiveAction) => Beat::Gone,
        Err(e) => {
            tracing::error!(instance = %action.instance_id, hook = %action.hook, error = %e, retryable = e.is_retryable(), "heartbeat failed; the look goes on");
            shared::metrics::emit(FUNCTION, "heartbeat", "failed");
            Beat::Unknown
        }
    }
}

/// Whether a look that failed is sent back quickly: only after a heartbeat that found
/// the action alive, and only so many times in a row.
pub fn retries_soon(beat: Beat, progress: &Progress) -> bool {
    beat == Beat::Alive && progress.failed_looks < MAX_FAILED_LOOKS
}

/// A look failed after its heartbeat: send the event back with a short delay rather
/// than wait out the queue's visibility timeout, which may be longer than the hook's.
pub async fn retry_soon(
    deps: &Deps,
    event: &Envelope,
    progress: &Progress,
    subject: &Subject,
    error: shared::Error,
) -> Result<()> {
    let again = Progress {
        failed_looks: progress.failed_looks + 1,
        ..progress.clone()
    };
    match act::send_back(deps, event, &again, RETRY_DELAY_SECONDS).await {
        Ok(()) => {
            tracing::error!(event_id = %event.id, error = %error, retryable = error.is_retryable(), failed_looks = again.failed_looks, "look failed after its heartbeat; re-queued");
            shared::metrics::emit(FUNCTION, "lifecycle", "requeued");
            Ok(())
        }
        Err(e) => {
            tracing::error!(event_id = %event.id, error = %e, "could not re-queue the failed look");
            deps.aws
                .reporter
                .failure(subject, "lifecycle", &error)
                .await;
            Err(error)
        }
    }
}
