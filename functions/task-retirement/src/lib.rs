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
use shared::aws::autoscaling::AutoScaling;
use shared::aws::ec2::Ec2;
use shared::aws::ecs::Ecs;
use shared::aws::sqs::Queue;
use shared::events::Envelope;
use shared::notify::{Reporter, Subject};
use shared::Result;

use config::Config;
use parse::Intent;

/// Everything the handler needs from the world, built once per cold start.
pub struct Deps {
    pub config: Config,
    pub ecs: Ecs,
    pub asg: AutoScaling,
    pub ec2: Ec2,
    pub queue: Queue,
    pub reporter: Reporter,
}

impl Deps {
    /// The adapters of one account and Region (see `shared::tenancy`), with the
    /// function's settings.
    pub fn new(aws: &shared::aws::Aws, config: &Config) -> Self {
        Deps {
            ecs: aws.ecs(),
            asg: aws.autoscaling(),
            ec2: aws.ec2(),
            queue: aws.queue(&config.queue_url),
            reporter: aws.reporter(&config.common),
            config: config.clone(),
        }
    }
}

shared::function!(Deps, config::Config, Deps::new, handle);

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
            let observed = match observe::observe(deps, retirement).await {
                Ok(observed) => observed,
                Err(e) => {
                    deps.reporter.failure(&subject, "observe", &e).await;
                    return Err(e);
                }
            };
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
