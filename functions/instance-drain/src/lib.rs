//! instance-drain: drains ECS container instances before Auto Scaling (or a spot
//! interruption) takes them away, and admits launching instances only once they have
//! joined their cluster.
//!
//! parse (event → intent) → observe (read the cluster, as decide asks) → decide (pure
//! plan, reasons) → notices (wording) → act (the shared executor). This file is the
//! glue; `flow.rs` runs each intent's turns between observe and decide.

pub mod act;
pub mod aws;
pub mod config;
pub mod decide;
pub mod flow;
pub mod heartbeat;
pub mod notices;
pub mod observe;
pub mod parse;
pub mod placement;

use shared::aws::sqs::Queue;
use shared::events::Envelope;
use shared::notify::Subject;
use shared::Result;

use config::Config;
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
    let subject = Subject::of(&event.id, intent.kind());
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
            let place = (*origin, *destination);
            flow::lifecycle(deps, &event, subject, action, progress, place).await
        }
        Intent::SpotInterruption(warning) => flow::spot(deps, &event, subject, warning).await,
    }
}
