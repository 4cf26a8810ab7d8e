//! task-retirement: replaces ECS service tasks and EC2 container instances that AWS has
//! scheduled for retirement, inside the maintenance window and ahead of AWS, and tells
//! people about what it cannot replace (standalone tasks, unmanaged resources).
//!
//! parse (event → intent) → observe (read the fleet) → decide (pure plan) → act.

pub mod act;
pub mod config;
pub mod decide;
pub mod forecast;
pub mod parse;

use std::collections::BTreeMap;

use chrono::Utc;
use shared::aws::autoscaling::AutoScaling;
use shared::aws::ec2::Ec2;
use shared::aws::ecs::Ecs;
use shared::aws::sqs::Queue;
use shared::events::Envelope;
use shared::notify::{Reporter, Subject};
use shared::Result;

use config::{Config, Replace};
use decide::Observed;
use parse::{Intent, Retirement, Target};

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
    let subject = Subject {
        event_id: event.id.clone(),
        kind: intent.kind().to_string(),
        ..Subject::default()
    };
    let plan = match &intent {
        Intent::OptedOut(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            return Ok(());
        }
        Intent::Ignore(reason) => decide::ignored(reason),
        Intent::Closed(retirement) => decide::closed(retirement),
        Intent::Retire {
            retirement,
            deferral,
        } => match observe(deps, retirement).await {
            Ok(observed) => {
                tracing::info!(
                    event_id = %event.id,
                    event_arn = %retirement.event_arn,
                    deferrals = deferral.deferrals,
                    observed = %serde_json::to_string(&observed).unwrap_or_default(),
                    "observed"
                );
                decide::retire(retirement, &observed, deferral, &deps.config, Utc::now())
            }
            Err(e) => {
                deps.reporter.failure(&subject, "observe", &e).await;
                return Err(e);
            }
        },
    };
    act::execute(deps, &event, &subject, plan).await
}

/// Reads what the decision needs about every affected resource. Tasks are resolved to
/// their services, so a service named by several retiring tasks is replaced once.
async fn observe(deps: &Deps, r: &Retirement) -> Result<Vec<Observed>> {
    let mut managed = Managed::default();
    let mut observed = vec![];
    let mut services: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut by_name = vec![];
    let mut retiring_in: BTreeMap<String, Vec<decide::RetiringHost>> = BTreeMap::new();
    for target in &r.targets {
        match target {
            Target::ServiceByName { service, arn } => by_name.push((service, arn)),
            Target::Service { cluster, service } => {
                services
                    .entry((cluster.clone(), service.clone()))
                    .or_default();
            }
            Target::Task { cluster, arn } => {
                match find_task(deps, &mut managed, cluster.as_deref(), arn).await? {
                    Found::ServiceTask { cluster, service } => services
                        .entry((cluster, service))
                        .or_default()
                        .push(arn.clone()),
                    Found::Other(o) => observed.push(*o),
                }
            }
            Target::Instance { instance_id } => {
                let found = match deps.asg.group_of_instance(instance_id).await? {
                    Some(name) => deps.asg.group_with_capacity_rebalance(&name).await?,
                    None => None,
                };
                let (group, capacity_rebalance) = match found {
                    Some((g, rebalance)) => (Some(g), rebalance),
                    None => (None, false),
                };
                // The group's hosts that AWS has scheduled (this one too, with the
                // deadline EC2 gives it), whatever notice names them: what the budget
                // forecast and the group's retirement queue count. Only a scheduled notice
                // of a managed group needs it.
                let others_retiring = match &group {
                    Some(g) if g.cluster().is_some() && r.start_time.is_some() => {
                        if !retiring_in.contains_key(&g.name) {
                            let ids: Vec<String> =
                                g.instances.iter().map(|i| i.instance_id.clone()).collect();
                            let events = deps.ec2.scheduled_events(&ids).await?;
                            let hosts = events
                                .into_iter()
                                .map(|(instance_id, events)| decide::RetiringHost {
                                    instance_id,
                                    not_before: events.iter().filter_map(|e| e.not_before).min(),
                                })
                                .collect();
                            retiring_in.insert(g.name.clone(), hosts);
                        }
                        retiring_in[&g.name].clone()
                    }
                    _ => vec![],
                };
                observed.push(Observed::Instance {
                    instance_id: instance_id.clone(),
                    group,
                    capacity_rebalance,
                    others_retiring,
                });
            }
        }
    }
    for (service, arn) in by_name {
        let named: Vec<String> = services.keys().map(|(c, _)| c.clone()).collect();
        match find_service_cluster(deps, &mut managed, named, service).await? {
            Some(Ok(cluster)) => {
                services.entry((cluster, service.clone())).or_default();
            }
            Some(Err(clusters)) => observed.push(Observed::AmbiguousService {
                service: service.clone(),
                arn: arn.clone(),
                clusters,
            }),
            None => observed.push(Observed::Unmanaged {
                cluster: None,
                entity: arn.clone(),
            }),
        }
    }
    let mut deploying: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((cluster, service), via_tasks) in services {
        if !managed.check(&deps.ecs, &cluster).await? {
            observed.push(Observed::Unmanaged {
                entity: format!("{cluster}|{service}"),
                cluster: Some(cluster),
            });
            continue;
        }
        let s = match deps.ecs.describe_service(&cluster, &service).await? {
            Some(s) if s.is_active() => s,
            _ => {
                observed.push(Observed::ServiceGone { cluster, service });
                continue;
            }
        };
        let tasks = if deps.config.replace == Replace::StopTasks {
            deps.ecs.service_tasks(&cluster, &s.name).await?
        } else {
            vec![]
        };
        // Only a service that may be redeployed needs the budget and its images.
        let (busy, images) =
            if s.deployment_controller == "ECS" && deps.config.replace == Replace::Redeploy {
                if !deploying.contains_key(&cluster) {
                    let names = deps.ecs.services_deploying(&cluster).await?;
                    deploying.insert(cluster.clone(), names);
                }
                (
                    deploying[&cluster].clone(),
                    deps.ecs.task_definition_images(&s.task_definition).await?,
                )
            } else {
                (vec![], vec![])
            };
        observed.push(Observed::Service {
            cluster,
            service: s,
            via_tasks,
            deploying: busy,
            images,
            tasks,
        });
    }
    Ok(observed)
}

/// The cluster of a service named by the old short ARN: one of the clusters the event
/// names with a service of that name, else the one managed cluster that has it.
/// `Some(Err(clusters))` when several managed clusters have it (a guess could redeploy
/// the wrong one); `None` when no managed cluster does.
async fn find_service_cluster(
    deps: &Deps,
    managed: &mut Managed,
    named: Vec<String>,
    service: &str,
) -> Result<Option<std::result::Result<String, Vec<String>>>> {
    let mut named = named;
    named.dedup();
    let mut candidates = vec![];
    for c in &named {
        if has_service(deps, c, service).await? {
            candidates.push(c.clone());
        }
    }
    if candidates.is_empty() {
        let listed = deps.ecs.managed_clusters().await?;
        managed.0.extend(listed.iter().map(|c| (c.clone(), true)));
        for c in listed {
            if has_service(deps, &c, service).await? {
                candidates.push(c);
            }
        }
    }
    Ok(match candidates.len() {
        0 => None,
        1 => Some(Ok(candidates.remove(0))),
        _ => Some(Err(candidates)),
    })
}

async fn has_service(deps: &Deps, cluster: &str, service: &str) -> Result<bool> {
    Ok(deps
        .ecs
        .describe_service(cluster, service)
        .await?
        .is_some_and(|s| s.is_active()))
}

/// What a retiring task turned out to be.
enum Found {
    ServiceTask { cluster: String, service: String },
    Other(Box<Observed>),
}

fn other(o: Observed) -> Found {
    Found::Other(Box::new(o))
}

async fn find_task(
    deps: &Deps,
    managed: &mut Managed,
    cluster: Option<&str>,
    arn: &str,
) -> Result<Found> {
    let clusters = match cluster {
        Some(c) => vec![c.to_string()],
        // The old short ARN does not say its cluster: look in the managed ones, which
        // were listed by their opt-in tag (one DescribeTasks each).
        None => {
            let listed = deps.ecs.managed_clusters().await?;
            managed.0.extend(listed.iter().map(|c| (c.clone(), true)));
            listed
        }
    };
    for c in clusters {
        if !managed.check(&deps.ecs, &c).await? {
            return Ok(other(Observed::Unmanaged {
                cluster: Some(c),
                entity: arn.to_string(),
            }));
        }
        let Some(mut found) = deps
            .ecs
            .describe_task_evidence(&c, &[arn.to_string()])
            .await?
            .pop()
        else {
            continue;
        };
        let task = found.task;
        return Ok(match (task.is_running(), task.service()) {
            (true, Some(s)) => Found::ServiceTask {
                service: s.to_string(),
                cluster: c,
            },
            (true, None) => other(Observed::Standalone {
                cluster: c,
                handled: found.tags.remove(decide::HANDLED_TAG),
                task,
            }),
            (false, _) => other(Observed::TaskGone {
                cluster: Some(c),
                arn: arn.to_string(),
            }),
        });
    }
    Ok(other(match cluster {
        Some(c) => Observed::TaskGone {
            cluster: Some(c.to_string()),
            arn: arn.to_string(),
        },
        None => Observed::Unmanaged {
            cluster: None,
            entity: arn.to_string(),
        },
    }))
}

/// Which clusters carry the opt-in tag, asked once per cluster per event.
#[derive(Default)]
struct Managed(BTreeMap<String, bool>);

impl Managed {
    async fn check(&mut self, ecs: &Ecs, cluster: &str) -> Result<bool> {
        if let Some(known) = self.0.get(cluster) {
            return Ok(*known);
        }
        let managed = ecs.is_managed(cluster).await?;
        self.0.insert(cluster.to_string(), managed);
        Ok(managed)
    }
}
