//! guardduty-responder: isolates, snapshots and stops ECS tasks that GuardDuty Runtime
//! Monitoring finds compromised, quarantines their EC2 hosts (and hosts found
//! compromised themselves) for forensics, contains what attack sequences name, and
//! reports it all, with rails so that it never stops the wrong thing or takes a service
//! down by itself.
//!
//! parse (event → threat) → screen (pure) → observe (ECS, Auto Scaling, EC2) → decide
//! (pure plan, reasons) → notices (wording) → act (the shared executor) → one
//! notification.

pub mod act;
pub mod config;
pub mod decide;
pub mod notices;
pub mod observe;
pub mod parse;
pub mod sequence;

use chrono::Utc;
use shared::events::Envelope;
use shared::notify::{About, Subject};
use shared::Result;

use act::Response;
use config::Config;
use decide::Observed;
use parse::{HostThreat, Intent, SequenceThreat, Threat};
use sequence::Contained;
use shared::events::guardduty::InstanceDetails;
use shared::notify::Outcome;

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

async fn respond_task(deps: &Deps, event: &Envelope, threat: &Threat) -> Result<Outcome> {
    let f = &threat.finding;
    let mut subject = Subject::of(&event.id, "guardduty-finding");
    subject.about = About {
        cluster: Some(threat.cluster.clone()),
        task: f.task().and_then(|t| t.arn.clone()),
        instance: f.instance_id().map(str::to_string),
        group: None,
    };
    tracing::info!(
        event_id = %event.id,
        finding_id = %f.id,
        finding_type = %f.finding_type,
        severity = f.severity,
        count = f.service.count,
        cluster = %threat.cluster,
        "finding"
    );
    let plan = plan(deps, threat, &mut subject).await;
    finish(deps, subject, plan).await
}

/// Runs a plan, or reports why none could be made (a failed read).
async fn finish(deps: &Deps, subject: Subject, plan: Result<Response>) -> Result<Outcome> {
    let plan = deps.aws.reporter.failing(&subject, "observe", plan).await?;
    act::execute(deps, &subject, plan).await
}

/// A finding about a host itself: find its cluster (named in the finding, else among
/// the managed clusters), then isolate, snapshot and quarantine it if it is ours.
async fn respond_host(deps: &Deps, event: &Envelope, host: &HostThreat) -> Result<Outcome> {
    let mut subject = Subject::of(&event.id, "guardduty-host-finding");
    subject.about = About {
        cluster: host.cluster.as_ref().map(|(name, _)| name.clone()),
        instance: Some(host.instance_id.clone()),
        ..About::default()
    };
    tracing::info!(
        event_id = %event.id,
        finding_id = %host.finding.id,
        finding_type = %host.finding.finding_type,
        severity = host.finding.severity,
        instance = %host.instance_id,
        "host finding"
    );
    let plan = plan_host(deps, host, &mut subject).await;
    finish(deps, subject, plan).await
}

async fn plan_host(deps: &Deps, host: &HostThreat, subject: &mut Subject) -> Result<Response> {
    let (threat, managed, ci) = observe::locate_host(deps, host).await?;
    subject.about.cluster = Some(threat.cluster.clone());
    if let Some(plan) = decide::screen(&threat, managed, &deps.config) {
        return Ok(notices::plan(&threat, &Observed::default(), plan));
    }
    let mut seen = Observed::default();
    if let Some(ci) = ci {
        seen.host = Some(observe::host(deps, &threat, ci, subject).await?);
    }
    let plan = decide::respond_host(&threat, &seen, &deps.config);
    Ok(notices::plan(&threat, &seen, plan))
}

/// An attack sequence: each task and host it names goes through the same rails as its
/// own finding would (one notification each), then one Critical notification lists the
/// signals, the tasks and hosts and what became of each (see [`sequence`] for why it
/// comes last). Every resource is tried; the first failure fails the event (for a
/// retry) at the end.
async fn respond_sequence(deps: &Deps, event: &Envelope, seq: &SequenceThreat) -> Result<()> {
    let f = &seq.finding;
    tracing::info!(
        event_id = %event.id,
        finding_id = %f.id,
        finding_type = %f.finding_type,
        severity = f.severity,
        tasks = seq.tasks.len(),
        hosts = seq.hosts.len(),
        "attack sequence"
    );
    let mut contained = vec![];
    let mut first_error = None;
    let mut record = |kind, resource: &str, result: Result<Outcome>| {
        let outcome = result.unwrap_or_else(|e| {
            first_error.get_or_insert(e);
            Outcome::Failed
        });
        contained.push(Contained {
            kind,
            resource: resource.to_string(),
            outcome,
        });
    };
    for threat in &seq.tasks {
        let arn = threat.finding.task().and_then(|t| t.arn.as_deref());
        record(
            "task",
            arn.unwrap_or_default(),
            respond_task(deps, event, threat).await,
        );
    }
    for instance_id in &seq.hosts {
        let mut finding = f.clone();
        finding.service.detection = None;
        finding.resource.resource_type = shared::events::guardduty::INSTANCE.into();
        finding.resource.ecs_cluster_details = None;
        finding.resource.instance_details = Some(InstanceDetails {
            instance_id: Some(instance_id.clone()),
        });
        let host = HostThreat {
            finding,
            instance_id: instance_id.clone(),
            cluster: None,
        };
        record("host", instance_id, respond_host(deps, event, &host).await);
    }
    let mut subject = Subject::of(&event.id, "guardduty-attack-sequence");
    subject.about.cluster = seq.tasks.first().map(|t| t.cluster.clone());
    let (outcome, notice) = notices::sequence(seq, &contained);
    deps.aws
        .reporter
        .report(&subject, "attack-sequence", outcome, notice)
        .await;
    first_error.map_or(Ok(()), Err)
}

async fn plan(deps: &Deps, threat: &Threat, subject: &mut Subject) -> Result<Response> {
    let managed = deps.aws.ecs.is_managed(&threat.cluster_ref).await?;
    if let Some(plan) = decide::screen(threat, managed, &deps.config) {
        return Ok(notices::plan(threat, &Observed::default(), plan));
    }
    let seen = observe::task(deps, threat, subject).await?;
    let plan = decide::respond(threat, &seen, &deps.config, Utc::now());
    Ok(notices::plan(threat, &seen, plan))
}
