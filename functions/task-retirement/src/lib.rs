//! task-retirement: replaces ECS service tasks and EC2 container instances that AWS has
//! scheduled for retirement, inside the maintenance window and ahead of AWS, and tells
//! people about what it cannot replace (standalone tasks, unmanaged resources).
//!
//! parse (event → intent) → observe (read the fleet) → decide (pure plan) → act.

pub mod act;
pub mod config;
pub mod decide;
pub mod forecast;
pub mod markers;
pub mod notices;
pub mod observe;
pub mod parse;
pub mod timing;

use chrono::Utc;
use shared::aws::sqs::Queue;
use shared::events::Envelope;
use shared::notify::Subject;
use shared::Result;

use config::Config;
use parse::Intent;

/// What the handler acts through: its own is the retirement queue that holds deferred
/// events until the maintenance window.
pub type Deps = shared::runtime::Deps<Config>;

fn own(aws: &shared::aws::Aws, config: &Config) -> Queue {
    aws.queue(&config.queue_url)
}

shared::function!(Config, Queue, own, handle);

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event, deps.config.drain_on_rebalance)?;
    let subject = Subject::of(&event.id, intent.kind());
    let plan = match &intent {
        Intent::OptedOut(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            return Ok(());
        }
        Intent::Ignore(reason) => vec![notices::ignored(reason)],
        Intent::Closed(retirement) => notices::plan(decide::closed(), retirement, &deps.config),
        Intent::Retire {
            retirement,
            deferral,
        } => {
            let observed = observe::observe(deps, retirement).await;
            let reporter = &deps.aws.reporter;
            let observed = reporter.failing(&subject, "observe", observed).await?;
            tracing::info!(
                event_id = %event.id,
                event_arn = %retirement.event_arn,
                deferrals = deferral.deferrals,
                observed = %serde_json::to_string(&observed).unwrap_or_default(),
                "observed"
            );
            let decided = decide::retire(retirement, &observed, deferral, &deps.config, Utc::now());
            notices::plan(decided, retirement, &deps.config)
        }
    };
    act::execute(deps, &event, &subject, plan).await
}
