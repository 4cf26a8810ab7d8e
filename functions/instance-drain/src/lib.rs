//! instance-drain: drains ECS container instances before Auto Scaling (or a spot
//! interruption) takes them away, and admits launching instances only once they have
//! joined their cluster.
//!
//! parse (event → intent) → observe (read the cluster, as decide asks) → decide (pure
//! plan, reasons) → notices (wording) → act (the shared executor).

pub mod act;
pub mod aws;
pub mod config;
pub mod decide;
pub mod heartbeat;
pub mod notices;
pub mod observe;
pub mod parse;
pub mod placement;

use chrono::Utc;
use shared::aws::sqs::Queue;
use shared::events::Envelope;
use shared::exec::action::DRAIN_HOST;
use shared::notify::Subject;
use shared::Result;

use config::{Config, FUNCTION};
use decide::{Beat, Look, Next};
use observe::{Read, Seen};
use parse::Intent;

pub use heartbeat::{MAX_FAILED_LOOKS, RETRY_DELAY_SECONDS};

/// What the handler acts through: its own is the drain queue that carries re-checks.
pub type Deps = shared::runtime::Deps<Config>;

fn own(aws: &shared::aws::Aws, config: &Config) -> Queue {
    aws.queue(&config.queue_url)
}

shared::function!(Config, Queue, own, handle);

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event)?;
    let mut subject = Subject::of(&event.id, intent.kind());
    match &intent {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            Ok(())
        }
        Intent::Lifecycle {
            action,
            progress,
            origin,
            destination,
        } => {
            if !deps.config.hooks.owns(&action.hook) {
                // Another tool's hook (ECS managed draining, a log shipper, ...): not
                // ours to drain, heartbeat, complete or report.
                tracing::debug!(event_id = %event.id, hook = %action.hook, group = %action.group, "not one of our hooks (LIFECYCLE_HOOK_NAMES)");
                shared::metrics::emit(FUNCTION, "lifecycle", "foreign-hook");
                return Ok(());
            }
            subject.about.group = Some(action.group.clone());
            subject.about.instance = Some(action.instance_id.clone());
            // Every look reads the group first, and heartbeats before any other read.
            let group = deps.aws.asg.group(&action.group).await;
            let beat = match decide::heartbeats(&group) {
                true => heartbeat::send(deps, action).await,
                false => Beat::Unknown,
            };
            let look = async {
                let group = group?;
                subject.about.cluster =
                    group.as_ref().and_then(|g| g.cluster()).map(str::to_string);
                let look = Look {
                    action,
                    progress,
                    origin: *origin,
                    destination: *destination,
                    beat,
                    group: group.as_ref(),
                };
                let plan = lifecycle_plan(deps, &look).await?;
                act::execute(deps, &event, Some(action), &subject, plan).await
            };
            match look.await {
                Ok(()) => Ok(()),
                Err(e) if heartbeat::retries_soon(beat, progress) => {
                    heartbeat::retry_soon(deps, &event, progress, &subject, e).await
                }
                failed => {
                    let reporter = &deps.aws.reporter;
                    reporter.failing(&subject, "lifecycle", failed).await
                }
            }
        }
        Intent::SpotInterruption(warning) => {
            subject.about.instance = Some(warning.instance_id.clone());
            let reporter = &deps.aws.reporter;
            let found = observe::spot(deps, warning, &mut subject).await;
            let found = reporter.failing(&subject, "observe", found).await?;
            let plan = notices::plan(decide::spot_host(warning, found.as_ref()));
            let done = act::execute(deps, &event, None, &subject, plan).await;
            reporter.failing(&subject, DRAIN_HOST, done).await
        }
    }
}

/// Decides a lifecycle look, making each read decide asks for, one at a time.
async fn lifecycle_plan(deps: &Deps, look: &Look<'_>) -> Result<Vec<act::Step>> {
    let now = Utc::now();
    let mut seen = Seen::default();
    loop {
        match decide::lifecycle(look, &seen, &deps.config, now) {
            Next::Plan(plan) => return Ok(notices::plan(plan)),
            Next::Read(read) => {
                let measured = matches!(read, Read::Host { measured: true, .. });
                observe::read(deps, read, &mut seen).await?;
                if measured {
                    shared::metrics::emit_drain(FUNCTION, look.progress.started_at, now);
                }
            }
        }
    }
}
