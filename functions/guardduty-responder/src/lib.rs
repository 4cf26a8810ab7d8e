//! guardduty-responder: isolates, snapshots and stops ECS tasks that GuardDuty Runtime
//! Monitoring finds compromised, quarantines their EC2 hosts (and hosts found
//! compromised themselves) for forensics, contains what attack sequences name, and
//! reports it all, with rails so that it never stops the wrong thing or takes a service
//! down by itself.
//!
//! parse (event → threat) → screen (pure) → observe (ECS, Auto Scaling, EC2) → decide
//! (pure plan, reasons) → notices (wording) → act (the shared executor) → one
//! notification. This file is the glue; `flow.rs` runs each intent's turns.

pub mod act;
pub mod config;
pub mod decide;
pub mod flow;
pub mod notices;
pub mod observe;
pub mod parse;
pub mod sequence;

use shared::events::Envelope;
use shared::Result;

use config::Config;
use flow::{respond_host, respond_sequence, respond_task};
use parse::Intent;

/// What the handler acts through: the adapters every function has, nothing of its own.
pub type Deps = shared::runtime::Deps<Config>;

shared::function!(Config, (), shared::runtime::nothing, handle);

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    match parse::intent(&event)? {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            Ok(())
        }
        Intent::Respond(threat) => respond_task(deps, &event, &threat).await.map(drop),
        Intent::Host(host) => respond_host(deps, &event, &host).await.map(drop),
        Intent::Sequence(seq) => respond_sequence(deps, &event, &seq).await,
    }
}
