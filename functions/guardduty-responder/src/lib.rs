//! guardduty-responder: stops ECS tasks that GuardDuty Runtime Monitoring finds
//! compromised, quarantines their EC2 hosts for forensics, and reports it all, with
//! rails so that it never stops the wrong thing or takes a service down by itself.
//!
//! parse (event → threat) → screen (pure) → observe (ECS, Auto Scaling) → decide (pure
//! plan) → act.

pub mod act;
pub mod config;
pub mod decide;
pub mod parse;

use chrono::Utc;
use shared::aws::autoscaling::AutoScaling;
use shared::aws::ec2::Ec2;
use shared::aws::ecs::Ecs;
use shared::events::Envelope;
use shared::notify::{Reporter, Subject};
use shared::Result;

use act::Target;
use config::Config;
use decide::{Host, HostGroup, Observed, Plan};
use parse::{Intent, Threat};

/// Everything the handler needs from the world, built once per cold start.
pub struct Deps {
    pub config: Config,
    pub ecs: Ecs,
    pub asg: AutoScaling,
    pub ec2: Ec2,
    pub reporter: Reporter,
}

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event)?;
    let threat = match intent {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            return Ok(());
        }
        Intent::Respond(threat) => *threat,
    };
    let f = &threat.finding;
    let mut subject = Subject {
        event_id: event.id.clone(),
        kind: "guardduty-finding".into(),
        cluster: Some(threat.cluster.clone()),
        task: f.task().and_then(|t| t.arn.clone()),
        instance: f.instance_id().map(str::to_string),
        ..Subject::default()
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
    let plan = match plan(deps, &threat, &mut subject).await {
        Ok(plan) => plan,
        Err(e) => {
            deps.reporter.failure(&subject, "observe", &e).await;
            return Err(e);
        }
    };
    let target = Target {
        event: &event,
        subject,
    };
    act::execute(deps, &target, plan).await
}

async fn plan(deps: &Deps, threat: &Threat, subject: &mut Subject) -> Result<Plan> {
    let managed = deps.ecs.is_managed(&threat.cluster_ref).await?;
    if let Some(plan) = decide::screen(threat, managed, &deps.config) {
        return Ok(plan);
    }
    let seen = observe(deps, threat, subject).await?;
    Ok(decide::respond(threat, &seen, &deps.config, Utc::now()))
}

/// Reads the task, and what the rails need: its service's health and stop history, and
/// its host's container instance and Auto Scaling group.
async fn observe(deps: &Deps, threat: &Threat, subject: &mut Subject) -> Result<Observed> {
    let cluster = &threat.cluster_ref;
    let arns: Vec<String> = threat
        .finding
        .task()
        .and_then(|t| t.arn.clone())
        .into_iter()
        .collect();
    let task = deps
        .ecs
        .describe_task_evidence(cluster, &arns)
        .await?
        .into_iter()
        .next();
    let mut seen = Observed {
        task,
        ..Observed::default()
    };
    let Some(task) = seen.task.as_ref().map(|e| e.task.clone()) else {
        return Ok(seen);
    };
    if let (true, Some(service)) = (
        task.is_running() && task.desired_status != "STOPPED",
        task.service(),
    ) {
        seen.service_running = deps
            .ecs
            .describe_service(cluster, service)
            .await?
            .map(|s| s.running_count);
        seen.service_stopped = deps.ecs.stopped_tasks_of_service(cluster, service).await?;
    }
    let Some(ci_arn) = task
        .container_instance_arn
        .filter(|_| deps.config.quarantine_host)
    else {
        return Ok(seen);
    };
    let Some(ci) = deps
        .ecs
        .describe_container_instances(cluster, vec![ci_arn])
        .await?
        .into_iter()
        .next()
    else {
        return Ok(seen);
    };
    let instance_id = ci.ec2_instance_id.clone();
    if let Some(named) = threat.finding.instance_id().filter(|i| *i != instance_id) {
        // ECS placed the task; its answer decides which host is quarantined.
        tracing::warn!(finding_instance = named, ecs_instance = %instance_id, "finding names another host than ECS");
    }
    subject.instance = Some(instance_id.clone());
    let group = match deps.asg.group_of_instance(&instance_id).await? {
        None => None,
        Some(name) => {
            let g = deps.asg.group(&name).await?;
            subject.group = Some(name.clone());
            Some(HostGroup {
                cluster_tag: g.as_ref().and_then(|g| g.cluster()).map(str::to_string),
                lifecycle_state: g.as_ref().and_then(|g| {
                    g.instances
                        .iter()
                        .find(|i| i.instance_id == instance_id)
                        .map(|i| i.lifecycle_state.clone())
                }),
                name,
            })
        }
    };
    seen.host = Some(Host {
        instance_id,
        container_instance: ci,
        group,
    });
    Ok(seen)
}
