//! guardduty-responder's turns for each intent: screen, observe, decide, act and the one
//! notification, for a task, a host, or every resource an attack sequence names. The
//! handler (`lib.rs`) picks the turn for the intent.

use chrono::Utc;
use shared::events::guardduty::InstanceDetails;
use shared::events::Envelope;
use shared::notify::{About, Outcome, Subject};
use shared::Result;

use crate::act::{self, Response};
use crate::decide::{self, Observed};
use crate::parse::{HostThreat, SequenceThreat, Threat};
use crate::sequence::Contained;
use crate::{notices, observe, Deps};

pub(crate) async fn respond_task(
    deps: &Deps,
    event: &Envelope,
    threat: &Threat,
) -> Result<Outcome> {
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
pub(crate) async fn finish(
    deps: &Deps,
    subject: Subject,
    plan: Result<Response>,
) -> Result<Outcome> {
    let plan = deps.aws.reporter.failing(&subject, "observe", plan).await?;
    act::execute(deps, &subject, plan).await
}

/// A finding about a host itself: find its cluster (named in the finding, else among
/// the managed clusters), then isolate, snapshot and quarantine it if it is ours.
pub(crate) async fn respond_host(
    deps: &Deps,
    event: &Envelope,
    host: &HostThreat,
) -> Result<Outcome> {
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

pub(crate) async fn plan_host(
    deps: &Deps,
    host: &HostThreat,
    subject: &mut Subject,
) -> Result<Response> {
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
/// signals, the tasks and hosts and what became of each (see [`crate::sequence`] for why it
/// comes last). Every resource is tried; the first failure fails the event (for a
/// retry) at the end.
pub(crate) async fn respond_sequence(
    deps: &Deps,
    event: &Envelope,
    seq: &SequenceThreat,
) -> Result<()> {
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

pub(crate) async fn plan(deps: &Deps, threat: &Threat, subject: &mut Subject) -> Result<Response> {
    let managed = deps.aws.ecs.is_managed(&threat.cluster_ref).await?;
    if let Some(plan) = decide::screen(threat, managed, &deps.config) {
        return Ok(notices::plan(threat, &Observed::default(), plan));
    }
    let seen = observe::task(deps, threat, subject).await?;
    let plan = decide::respond(threat, &seen, &deps.config, Utc::now());
    Ok(notices::plan(threat, &seen, plan))
}
