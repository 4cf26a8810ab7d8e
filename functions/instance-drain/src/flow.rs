//! instance-drain's turns for each intent: a lifecycle look (the group, the heartbeat,
//! then each read decide asks for, one at a time, and the plan) and a Spot warning. The
//! handler (`lib.rs`) picks the turn for the intent.

use chrono::Utc;
use shared::events::autoscaling::LifecycleAction;
use shared::events::ec2::InstanceWarning;
use shared::events::Envelope;
use shared::exec::action::DRAIN_HOST;
use shared::notify::Subject;
use shared::Result;

use crate::config::FUNCTION;
use crate::decide::{self, Beat, Look, Next};
use crate::observe::{self, Read, Seen};
use crate::parse::{Place, Progress};
use crate::{act, heartbeat, notices, Deps};

/// One look at a held lifecycle action of one of our hooks: heartbeat, read, decide, act;
/// a failed look is retried soon while the heartbeat keeps the hook, else reported.
pub(crate) async fn lifecycle(
    deps: &Deps,
    event: &Envelope,
    mut subject: Subject,
    action: &LifecycleAction,
    progress: &Progress,
    (origin, destination): (Place, Place),
) -> Result<()> {
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
        subject.about.cluster = group.as_ref().and_then(|g| g.cluster()).map(str::to_string);
        let look = Look {
            action,
            progress,
            origin,
            destination,
            beat,
            group: group.as_ref(),
        };
        let plan = lifecycle_plan(deps, &look).await?;
        act::execute(deps, event, Some(action), &subject, plan).await
    };
    match look.await {
        Ok(()) => Ok(()),
        Err(e) if heartbeat::retries_soon(beat, progress) => {
            heartbeat::retry_soon(deps, event, progress, &subject, e).await
        }
        failed => {
            let reporter = &deps.aws.reporter;
            reporter.failing(&subject, "lifecycle", failed).await
        }
    }
}

/// A Spot interruption warning: find the host's cluster, drain it if it is ours.
pub(crate) async fn spot(
    deps: &Deps,
    event: &Envelope,
    mut subject: Subject,
    warning: &InstanceWarning,
) -> Result<()> {
    subject.about.instance = Some(warning.instance_id.clone());
    let reporter = &deps.aws.reporter;
    let found = observe::spot(deps, warning, &mut subject).await;
    let found = reporter.failing(&subject, "observe", found).await?;
    let plan = notices::plan(decide::spot_host(warning, found.as_ref()));
    let done = act::execute(deps, event, None, &subject, plan).await;
    reporter.failing(&subject, DRAIN_HOST, done).await
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
