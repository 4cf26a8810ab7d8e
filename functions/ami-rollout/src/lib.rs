//! ami-rollout: keeps every opted-in Auto Scaling group on the AMI its SSM parameter
//! names, by starting instance refreshes on groups that drifted, one budgeted group at a
//! time and only inside the maintenance window; and reports how each refresh ended.
//!
//! parse (event → intent) → observe (groups, parameters, container instances, then
//! refreshes and launch templates only if something may roll: decide says which read
//! comes next) → decide (pure plan; notices words it) → act (the shared executor).
//! This file is the glue; `flow.rs` runs the turns between observe and decide.

pub mod act;
pub mod config;
pub mod decide;
pub mod drift;
pub mod fanout;
pub mod flow;
pub mod images;
pub mod notices;
pub mod observe;
pub mod parse;
pub mod tags;
pub mod templates;

use shared::aws::ssm::Ssm;
use shared::events::Envelope;
use shared::notify::Subject;
use shared::Result;

use config::Config;
use flow::{guard_plan, outcome_plan};
use parse::Intent;

pub use flow::{check_plan, observe_groups};

/// What the handler acts through: the adapters every function has, and [`Own`].
pub type Deps = shared::runtime::Deps<Config>;

/// What only ami-rollout uses.
pub struct Own {
    pub ssm: Ssm,
    /// Hub mode: where the scheduled check fans out to, and the organization's accounts.
    pub fanout: Option<shared::aws::sqs::Queue>,
    pub organizations: shared::aws::organizations::Organizations,
    /// The hub's own Region.
    pub region: String,
}

fn own(aws: &shared::aws::Aws, config: &Config) -> Own {
    Own {
        ssm: aws.ssm(),
        fanout: config.fanout_queue_url.as_deref().map(|url| aws.queue(url)),
        organizations: aws.organizations(),
        region: aws.region(),
    }
}

// The ECS-optimized AMI release notification arrives SNS-shaped.
shared::function!(
    Config,
    Own,
    own,
    handle,
    translate = shared::events::ssm::sns_records_to_envelopes
);

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event)?;
    if let (Intent::CheckAll { .. } | Intent::WindowGuard, Some(queue)) =
        (&intent, &deps.own.fanout)
    {
        if !fanout::is_fanned(&event) {
            return fanout::fan_out(deps, queue, &event).await;
        }
    }
    let subject = Subject::of(&event.id, intent.kind());
    let observed = match &intent {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            return Ok(());
        }
        Intent::CheckAll { why, .. } => {
            tracing::info!(event_id = %event.id, why = %why, "checking every managed group");
            check_plan(deps, None, None).await
        }
        Intent::CheckParameter(change) => check_plan(deps, Some(&change.name), None).await,
        Intent::RefreshEnded(refresh) => outcome_plan(deps, refresh).await,
        Intent::WindowGuard => guard_plan(deps).await,
    };
    let plan = deps
        .aws
        .reporter
        .failing(&subject, "observe", observed)
        .await?;
    act::execute(deps, &subject, plan).await
}
