//! `ecs-autopilot status`: reads the fleet (only reads) and says what ecs-autopilot
//! manages and what it is in the middle of. Drift is observed by ami-rollout's own
//! `observe_groups`, so the CLI and the function agree on which AMI a group should run.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::ScalingActivityStatusCode;
use aws_sdk_ec2::types::Filter;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::{GroupDetails, LifecycleState, RefreshStatus};
use shared::error::{aws, Result};

use ami_rollout::observe::Observed;
use ami_rollout::tags::is_paused;
use ami_rollout::Deps;
use guardduty_responder::decide::{QUARANTINE_TAG, QUARANTINE_TYPE_TAG};
use task_retirement::markers::SCHEDULED_TAG;

/// The whole answer of `status --json` (documented in docs/cli.md).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub region: String,
    pub generated_at: DateTime<Utc>,
    pub clusters: Vec<Cluster>,
    pub groups: Vec<GroupStatus>,
    pub quarantined: Vec<Quarantined>,
    pub retirements_scheduled: Vec<Scheduled>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    /// Tagged `ecs-autopilot:managed=true`.
    pub managed: bool,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub cluster: String,
    pub cluster_managed: bool,
    /// Tagged `ecs-autopilot:rollout=paused`.
    pub paused: bool,
    /// The SSM parameter naming the AMI the group should run (empty: none fits).
    pub parameter: String,
    /// Why the parameter gives no AMI (no parameter fits, or it is unusable).
    pub parameter_problem: Option<String>,
    pub target_ami: Option<String>,
    /// In-service instances.
    pub instances: usize,
    /// In-service instances per AMI their container instance reports (`unknown`: not
    /// registered in the cluster, or no `ecs.ami-id`).
    pub amis: BTreeMap<String, usize>,
    /// In-service instances running another AMI than `target_ami`.
    pub drifted: usize,
    /// The group's newest instance refresh.
    pub refresh: Option<Refresh>,
    pub held: Vec<Held>,
    pub quarantined: Vec<String>,
    /// Markers of the retirement notices whose later look is queued for this group.
    pub retirements_scheduled: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    pub id: String,
    pub status: RefreshStatus,
    /// Pending, InProgress, Cancelling, RollbackInProgress or Baking.
    pub active: bool,
    pub percentage_complete: Option<i32>,
    pub instances_to_update: Option<i32>,
    pub status_reason: Option<String>,
    pub checkpoints: Vec<i32>,
    /// The first checkpoint not yet passed.
    pub next_checkpoint: Option<i32>,
    pub start_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub instance_id: String,
    /// Terminating:Wait, Pending:Wait, Warmed:Terminating:Wait, ...
    pub lifecycle_state: LifecycleState,
    /// When the transition the hook holds began (its scaling activity's start).
    pub since: Option<DateTime<Utc>>,
    pub held_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    pub instance_id: String,
    pub state: String,
    pub group: Option<String>,
    /// The tag's value (the finding guardduty-responder quarantined it for).
    pub finding: String,
    pub finding_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scheduled {
    /// `group` (an instance replacement) or `service` (a redeploy).
    pub kind: &'static str,
    pub name: String,
    pub cluster: String,
    pub markers: Vec<String>,
}

/// What `status` found nothing of.
pub struct NothingManaged;

pub async fn status(
    deps: &Deps,
    region: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Status, NothingManaged>> {
    let managed_clusters = deps.aws.ecs.managed_clusters().await?;
    let groups = ami_rollout::observe::opted_in_groups(&deps.aws.asg).await?;
    if managed_clusters.is_empty() && groups.is_empty() {
        return Ok(Err(NothingManaged));
    }
    let targets: Vec<&GroupDetails> = groups.iter().collect();
    let observed = if targets.is_empty() {
        Observed::default()
    } else {
        ami_rollout::observe_groups(deps, &targets, None).await?
    };
    let quarantined = quarantined_hosts(deps, &groups).await?;
    let mut statuses = vec![];
    for g in &observed.groups {
        let details = &g.details;
        let target = observed.parameters.found.get(&g.parameter);
        let mut amis: BTreeMap<String, usize> = BTreeMap::new();
        for ami in g.running.values() {
            *amis
                .entry(ami.clone().unwrap_or_else(|| "unknown".into()))
                .or_default() += 1;
        }
        let parameter_problem = match (&g.no_parameter, target) {
            _ if !g.cluster_managed => None,
            (Some(why), _) => Some(why.to_string()),
            (None, None) => Some(
                observed
                    .parameters
                    .unusable
                    .get(&g.parameter)
                    .cloned()
                    .unwrap_or_else(|| "parameter not read".into()),
            ),
            (None, Some(_)) => None,
        };
        statuses.push(GroupStatus {
            name: g.name().to_string(),
            cluster: g.cluster.clone(),
            cluster_managed: g.cluster_managed,
            paused: is_paused(details),
            parameter: g.parameter.clone(),
            parameter_problem,
            target_ami: target.map(|t| t.image_id.clone()),
            instances: g.running.len(),
            drifted: target.map_or(0, |t| g.stale(&t.image_id).len()),
            amis,
            refresh: newest_refresh(deps, g.name()).await?,
            held: held(deps, details, now).await?,
            quarantined: quarantined
                .iter()
                .filter(|q| q.group.as_deref() == Some(g.name()))
                .map(|q| q.instance_id.clone())
                .collect(),
            retirements_scheduled: markers(details.group.tags.get(SCHEDULED_TAG)),
        });
    }
    let mut clusters: BTreeMap<String, Cluster> = managed_clusters
        .iter()
        .map(|c| {
            let cluster = Cluster {
                name: c.clone(),
                managed: true,
                groups: vec![],
            };
            (c.clone(), cluster)
        })
        .collect();
    for g in &statuses {
        clusters
            .entry(g.cluster.clone())
            .or_insert_with(|| Cluster {
                name: g.cluster.clone(),
                managed: g.cluster_managed,
                groups: vec![],
            })
            .groups
            .push(g.name.clone());
    }
    let mut scheduled: Vec<Scheduled> = statuses
        .iter()
        .filter(|g| !g.retirements_scheduled.is_empty())
        .map(|g| Scheduled {
            kind: "group",
            name: g.name.clone(),
            cluster: g.cluster.clone(),
            markers: g.retirements_scheduled.clone(),
        })
        .collect();
    for cluster in &managed_clusters {
        scheduled.extend(scheduled_services(deps, cluster).await?);
    }
    Ok(Ok(Status {
        region: region.to_string(),
        generated_at: now,
        clusters: clusters.into_values().collect(),
        groups: statuses,
        quarantined,
        retirements_scheduled: scheduled,
    }))
}

fn markers(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The group's newest instance refresh (one DescribeInstanceRefreshes), with the
/// checkpoints its preferences set.
async fn newest_refresh(deps: &Deps, group: &str) -> Result<Option<Refresh>> {
    let out = deps
        .aws
        .asg
        .client()
        .describe_instance_refreshes()
        .auto_scaling_group_name(group)
        .max_records(1)
        .send()
        .await
        .map_err(|e| aws("autoscaling", "DescribeInstanceRefreshes", e))?;
    Ok(out.instance_refreshes().first().map(|r| {
        let status = RefreshStatus::from(r.status().map(|s| s.as_str()).unwrap_or_default());
        let checkpoints: Vec<i32> = r
            .preferences()
            .map(|p| p.checkpoint_percentages().to_vec())
            .unwrap_or_default();
        let done = r.percentage_complete().unwrap_or_default();
        Refresh {
            id: r.instance_refresh_id().unwrap_or_default().to_string(),
            active: status.is_active(),
            status,
            percentage_complete: r.percentage_complete(),
            instances_to_update: r.instances_to_update(),
            status_reason: r.status_reason().map(str::to_string),
            next_checkpoint: checkpoints.iter().copied().find(|c| *c > done),
            checkpoints,
            start_time: r
                .start_time()
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        }
    }))
}

/// Instances a lifecycle hook holds (a `…:Wait` state), each with when its transition
/// began: the scaling activity AWS records for it (one DescribeScalingActivities, only
/// for a group holding any).
async fn held(deps: &Deps, details: &GroupDetails, now: DateTime<Utc>) -> Result<Vec<Held>> {
    let waiting: Vec<_> = details
        .group
        .instances
        .iter()
        .filter(|i| i.lifecycle_state.is_held())
        .collect();
    if waiting.is_empty() {
        return Ok(vec![]);
    }
    let out = deps
        .aws
        .asg
        .client()
        .describe_scaling_activities()
        .auto_scaling_group_name(&details.group.name)
        .max_records(100)
        .send()
        .await
        .map_err(|e| aws("autoscaling", "DescribeScalingActivities", e))?;
    Ok(waiting
        .into_iter()
        .map(|i| {
            // Newest first: the first open activity naming the instance is its hold.
            let since = out
                .activities()
                .iter()
                .filter(|a| a.status_code() == Some(&ScalingActivityStatusCode::MidLifecycleAction))
                .filter(|a| {
                    a.description()
                        .is_some_and(|d| d.split_whitespace().any(|w| w == i.instance_id))
                })
                .find_map(|a| a.start_time())
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
            Held {
                instance_id: i.instance_id.clone(),
                lifecycle_state: i.lifecycle_state.clone(),
                held_seconds: since.map(|s| (now - s).num_seconds().max(0)),
                since,
            }
        })
        .collect())
}

/// EC2 instances carrying guardduty-responder's quarantine tag, not yet terminated,
/// with the managed group holding each (if one does).
async fn quarantined_hosts(deps: &Deps, groups: &[GroupDetails]) -> Result<Vec<Quarantined>> {
    let group_of: BTreeMap<&str, &str> = groups
        .iter()
        .flat_map(|g| {
            g.group
                .instances
                .iter()
                .map(|i| (i.instance_id.as_str(), g.group.name.as_str()))
        })
        .collect();
    let mut pages = deps
        .aws
        .ec2
        .client()
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag-key")
                .values(QUARANTINE_TAG)
                .build(),
        )
        .into_paginator()
        .send();
    let mut found = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("ec2", "DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            if state == "terminated" {
                continue;
            }
            let tag = |key: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .map(|t| t.value().unwrap_or_default().to_string())
            };
            let id = i.instance_id().unwrap_or_default().to_string();
            found.push(Quarantined {
                group: group_of
                    .get(id.as_str())
                    .map(|g| g.to_string())
                    .or_else(|| tag("aws:autoscaling:groupName")),
                instance_id: id,
                state,
                finding: tag(QUARANTINE_TAG).unwrap_or_default(),
                finding_type: tag(QUARANTINE_TYPE_TAG),
            });
        }
    }
    found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    Ok(found)
}

/// Services of a managed cluster carrying task-retirement's scheduled tag: one
/// ListServices per 100 services and one DescribeServices (with tags) per 10.
async fn scheduled_services(deps: &Deps, cluster: &str) -> Result<Vec<Scheduled>> {
    let tagged = deps.aws.ecs.services_tagged(cluster, SCHEDULED_TAG).await?;
    Ok(tagged
        .into_iter()
        .filter_map(|(name, value)| {
            let markers = markers(Some(&value));
            (!markers.is_empty()).then(|| Scheduled {
                kind: "service",
                name,
                cluster: cluster.to_string(),
                markers,
            })
        })
        .collect())
}
