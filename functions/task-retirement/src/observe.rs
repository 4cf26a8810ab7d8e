//! Reads the fleet: what each resource a retirement notice names looks like now. Every
//! AWS read of a look is here; what to do about it is decide's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::Group;
use shared::aws::ecs::{ContainerImage, Ecs, ServiceDescription, Task};
use shared::Result;

use crate::decide::{self, TaskLead};
use crate::markers::HANDLED_TAG;
use crate::parse::{Retirement, Target};
use crate::Deps;

/// What one affected resource looks like now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "observed", rename_all = "snake_case")]
pub enum Observed {
    /// An ACTIVE service of a managed cluster, and the retiring tasks that named it.
    Service {
        cluster: String,
        service: ServiceDescription,
        via_tasks: Vec<String>,
        /// The cluster's services with a deployment rolling out now (the redeploy budget).
        deploying: Vec<String>,
        /// The images of the service's task definition (a new deployment resolves tags again).
        images: Vec<ContainerImage>,
        /// The service's tasks (read only with `RETIREMENT_REPLACE=stop-tasks`).
        tasks: Vec<Task>,
    },
    /// The service was deleted (or is being deleted): its tasks go anyway.
    ServiceGone { cluster: String, service: String },
    /// A service named by the old short ARN (no cluster) that several managed clusters
    /// have: which one retires is not known, so none is touched.
    AmbiguousService {
        service: String,
        arn: String,
        clusters: Vec<String>,
    },
    /// A running task of a managed cluster that no service owns, and its
    /// [`HANDLED_TAG`] (the notice it was reported for).
    Standalone {
        cluster: String,
        task: Task,
        handled: Option<String>,
    },
    /// The task has stopped, or ECS no longer knows it: already retired or replaced.
    TaskGone {
        cluster: Option<String>,
        arn: String,
    },
    /// In a cluster without `ecs-autopilot:managed=true`, or in no cluster we manage.
    Unmanaged {
        cluster: Option<String>,
        entity: String,
    },
    /// An EC2 instance and the Auto Scaling group it belongs to, if any.
    Instance {
        instance_id: String,
        group: Option<Group>,
        /// The group has Capacity Rebalancing on.
        capacity_rebalance: bool,
        /// The group's hosts with an EC2 scheduled event (DescribeInstanceStatus), this
        /// one included, whatever notice names them: what the budget forecast and the
        /// group's retirement queue count.
        others_retiring: Vec<RetiringHost>,
    },
}

/// A host that AWS has scheduled for retirement, stop or reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetiringHost {
    pub instance_id: String,
    /// The earliest `NotBefore` of its scheduled events.
    pub not_before: Option<DateTime<Utc>>,
}

/// Reads what the decision needs about every affected resource. Tasks are resolved to
/// their services, so a service named by several retiring tasks is replaced once.
pub async fn observe(deps: &Deps, r: &Retirement) -> Result<Vec<Observed>> {
    let mut managed = Managed::default();
    let mut observed = vec![];
    let mut services: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut by_name = vec![];
    let mut retiring_in: BTreeMap<String, Vec<RetiringHost>> = BTreeMap::new();
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
                    TaskLead::Service { cluster, service } => services
                        .entry((cluster, service))
                        .or_default()
                        .push(arn.clone()),
                    TaskLead::Found(o) => observed.push(*o),
                }
            }
            Target::Instance { instance_id } => {
                let found = match deps.aws.asg.group_of_instance(instance_id).await? {
                    Some(name) => deps.aws.asg.group_with_capacity_rebalance(&name).await?,
                    None => None,
                };
                let (group, capacity_rebalance) = match found {
                    Some((g, rebalance)) => (Some(g), rebalance),
                    None => (None, false),
                };
                // The group's hosts that AWS has scheduled (this one too, with the
                // deadline EC2 gives it), once per group.
                let others_retiring = match &group {
                    Some(g) if decide::reads_queue(g, r) => {
                        if !retiring_in.contains_key(&g.name) {
                            let ids: Vec<String> =
                                g.instances.iter().map(|i| i.instance_id.clone()).collect();
                            let events = deps.aws.ec2.scheduled_events(&ids).await?;
                            let hosts = events
                                .into_iter()
                                .map(|(instance_id, events)| RetiringHost {
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
        if !managed.check(&deps.aws.ecs, &cluster).await? {
            observed.push(Observed::Unmanaged {
                entity: format!("{cluster}|{service}"),
                cluster: Some(cluster),
            });
            continue;
        }
        let s = match deps.aws.ecs.describe_service(&cluster, &service).await? {
            Some(s) if s.is_active() => s,
            _ => {
                observed.push(Observed::ServiceGone { cluster, service });
                continue;
            }
        };
        let reads = decide::service_reads(&s, deps.config.replace);
        let tasks = if reads.tasks {
            deps.aws.ecs.service_tasks(&cluster, &s.name).await?
        } else {
            vec![]
        };
        let (busy, images) = if reads.redeploy {
            if !deploying.contains_key(&cluster) {
                let names = deps.aws.ecs.services_deploying(&cluster).await?;
                deploying.insert(cluster.clone(), names);
            }
            (
                deploying[&cluster].clone(),
                deps.aws
                    .ecs
                    .task_definition_images(&s.task_definition)
                    .await?,
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

/// The cluster of a service named by the old short ARN: looked for in the clusters the
/// event names, else in the managed ones (see [`decide::service_cluster`]).
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
        let listed = deps.aws.ecs.managed_clusters().await?;
        managed.0.extend(listed.iter().map(|c| (c.clone(), true)));
        for c in listed {
            if has_service(deps, &c, service).await? {
                candidates.push(c);
            }
        }
    }
    Ok(decide::service_cluster(candidates))
}

async fn has_service(deps: &Deps, cluster: &str, service: &str) -> Result<bool> {
    Ok(deps
        .aws
        .ecs
        .describe_service(cluster, service)
        .await?
        .is_some_and(|s| s.is_active()))
}

async fn find_task(
    deps: &Deps,
    managed: &mut Managed,
    cluster: Option<&str>,
    arn: &str,
) -> Result<TaskLead> {
    let clusters = match cluster {
        Some(c) => vec![c.to_string()],
        // The old short ARN does not say its cluster: look in the managed ones, which
        // were listed by their opt-in tag (one DescribeTasks each).
        None => {
            let listed = deps.aws.ecs.managed_clusters().await?;
            managed.0.extend(listed.iter().map(|c| (c.clone(), true)));
            listed
        }
    };
    for c in clusters {
        if !managed.check(&deps.aws.ecs, &c).await? {
            return Ok(TaskLead::Found(Box::new(Observed::Unmanaged {
                cluster: Some(c),
                entity: arn.to_string(),
            })));
        }
        let Some(mut found) = deps
            .aws
            .ecs
            .describe_task_evidence(&c, &[arn.to_string()])
            .await?
            .pop()
        else {
            continue;
        };
        let handled = found.tags.remove(HANDLED_TAG);
        return Ok(decide::task_lead(c, arn, found.task, handled));
    }
    Ok(TaskLead::Found(Box::new(decide::task_not_found(
        cluster, arn,
    ))))
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
