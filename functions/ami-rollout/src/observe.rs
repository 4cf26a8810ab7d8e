//! Every read ami-rollout makes, and what a check observed. No decision here: which
//! groups, clusters, images, parameters, refreshes and templates to read is decide's
//! (`decide::next` and the `*_to_read` functions); this module only reads them, batched
//! and a few at a time.

use std::collections::{BTreeMap, BTreeSet};

use shared::aws::autoscaling::AutoScaling;
use shared::aws::autoscaling::{GroupDetails, InstanceRefresh, LaunchTemplateRef};
use shared::aws::ec2::Ec2;
use shared::aws::ec2::Image;
use shared::aws::ec2::TemplateVersion;
use shared::aws::ssm::AmiParameters;
use shared::Result;

use crate::decide::{Found, NoParameter, Read};
use crate::templates::{self, lane_key, Lane, Templates};
use crate::Deps;

/// Reads in flight at once: per-cluster and per-group reads of a large fleet overlap
/// instead of queueing behind each other; well under the APIs' rate limits.
const CONCURRENT_READS: usize = 8;

/// Refreshes read per group: the newest decides, a few more cover a refresh that
/// started just before a failed one.
const REFRESHES_PER_GROUP: i32 = 5;

/// One managed group and what its instances run.
#[derive(Debug, Clone)]
pub struct GroupState {
    pub details: GroupDetails,
    pub cluster: String,
    /// The cluster carries `ecs-autopilot:managed=true`.
    pub cluster_managed: bool,
    /// The parameter the group follows (its tags, else the default, else the one AWS
    /// publishes for its image's family); empty when `no_parameter` says why not.
    pub parameter: String,
    /// Why no parameter could be chosen: the group is reported, never rolled.
    pub no_parameter: Option<NoParameter>,
    /// Mixed instances groups whose overrides launch from other templates: each launch
    /// template the group launches from, with the parameter it follows. Empty otherwise.
    pub lanes: Vec<Lane>,
    /// Instance → the AMI its lane's parameter names (lane groups only; any other
    /// instance is compared with the group's parameter).
    pub expected: BTreeMap<String, String>,
    /// In-service instance → the AMI its container instance reports (`None`: not
    /// registered in the cluster, or no `ecs.ami-id` attribute).
    pub running: BTreeMap<String, Option<String>>,
}

impl GroupState {
    pub fn name(&self) -> &str {
        &self.details.group.name
    }

    pub fn paused(&self) -> bool {
        crate::tags::is_paused(&self.details)
    }

    /// In-service instances running another AMI than `target` (or, in a lane group,
    /// than their lane's parameter names), with that AMI.
    pub fn stale(&self, target: &str) -> BTreeMap<&str, &str> {
        self.running
            .iter()
            .filter_map(|(i, ami)| Some((i.as_str(), ami.as_deref()?)))
            .filter(|(i, ami)| *ami != self.expected_ami(i, target))
            .collect()
    }

    /// The AMI an instance should run: its lane's, else `target`.
    pub fn expected_ami<'a>(&'a self, instance: &str, target: &'a str) -> &'a str {
        self.expected.get(instance).map_or(target, String::as_str)
    }
}

/// Everything a check observed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The groups this check is about.
    pub groups: Vec<GroupState>,
    pub parameters: AmiParameters,
    /// Refreshes of every managed group, newest first; empty when nothing could be
    /// rolled (no drift, or the window is closed), because then they are not read.
    pub refreshes: BTreeMap<String, Vec<InstanceRefresh>>,
    /// Launch template versions of the groups that may be rolled.
    pub templates: BTreeMap<String, Templates>,
    /// Images (by AMI id) the instances run and the parameters name, as DescribeImages
    /// answered; an id missing here could not be described.
    pub images: BTreeMap<String, Image>,
    /// Clusters tagged `ecs-autopilot:managed=true`.
    pub managed_clusters: BTreeSet<String>,
    /// Every opted-in group of the account (name, cluster), this check's or not: the
    /// rollout budget counts the refreshes of those in opted-in clusters.
    pub fleet: Vec<(String, String)>,
    /// Which of a check's follow-up reads were made.
    pub looked: Looked,
}

/// The follow-up reads a check made once something may roll (templates: `templates`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Looked {
    pub images: bool,
    pub refreshes: bool,
}

/// Every group tagged `ecs-autopilot:cluster` with a non-empty cluster name.
pub async fn opted_in_groups(asg: &AutoScaling) -> Result<Vec<GroupDetails>> {
    Ok(asg
        .managed_groups()
        .await?
        .into_iter()
        .filter(|g| g.group.cluster().is_some())
        .collect())
}

/// Clusters tagged `ecs-autopilot:managed=true`.
pub async fn managed_clusters(deps: &Deps) -> Result<BTreeSet<String>> {
    Ok(deps.aws.ecs.managed_clusters().await?.into_iter().collect())
}

/// EC2 instance → the AMI its container instance reports, in `clusters` (one list and
/// one describe per hundred container instances of each).
pub async fn amis_running(
    deps: &Deps,
    clusters: Vec<String>,
) -> Result<BTreeMap<String, Option<String>>> {
    Ok(concurrently(clusters, |cluster| {
        let ecs = deps.aws.ecs.clone();
        async move { ecs.container_instances(&cluster).await }
    })
    .await?
    .into_iter()
    .flatten()
    .map(|ci| (ci.ec2_instance_id, ci.ami_id))
    .collect())
}

/// Group → lane key → the version each lane template names (one
/// DescribeLaunchTemplateVersions per template). A template that can't be read is left
/// out, and the group is reported.
pub async fn lane_versions(
    deps: &Deps,
    reads: Vec<(String, LaunchTemplateRef)>,
) -> Result<BTreeMap<String, BTreeMap<String, TemplateVersion>>> {
    let read = concurrently(reads, |(group, template)| {
        let ec2 = deps.aws.ec2.clone();
        async move {
            let found = launch_templates(&ec2, &template).await?;
            Ok((group, lane_key(&template), found.current))
        }
    })
    .await?;
    let mut out: BTreeMap<String, BTreeMap<String, TemplateVersion>> = BTreeMap::new();
    for (group, key, version) in read {
        let entry = out.entry(group).or_default();
        if let Some(v) = version {
            entry.insert(key, v);
        }
    }
    Ok(out)
}

/// One DescribeImages per 200 images; nothing for none.
pub async fn images(deps: &Deps, ids: Vec<String>) -> Result<BTreeMap<String, Image>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    deps.aws.ec2.images(&ids).await
}

/// One GetParameters per ten parameters; nothing for none.
pub async fn parameters(deps: &Deps, names: Vec<String>) -> Result<AmiParameters> {
    if names.is_empty() {
        return Ok(AmiParameters::default());
    }
    deps.own.ssm.ami_parameters(&names).await
}

/// The newest refreshes of each group.
pub async fn refreshes(
    deps: &Deps,
    groups: Vec<String>,
) -> Result<Vec<(String, Vec<InstanceRefresh>)>> {
    concurrently(groups, |name| {
        let asg = deps.aws.asg.clone();
        async move {
            let refreshes = asg
                .instance_refreshes(&name, &[], REFRESHES_PER_GROUP)
                .await?;
            Ok((name, refreshes))
        }
    })
    .await
}

/// One refresh of each group: the one with that id, or (no id) the newest.
pub async fn refresh_of_each(
    deps: &Deps,
    reads: Vec<(String, Option<String>)>,
) -> Result<Vec<(String, Option<InstanceRefresh>)>> {
    concurrently(reads, |(group, id)| {
        let asg = deps.aws.asg.clone();
        async move {
            let refresh = refresh(&asg, &group, id).await?;
            Ok((group, refresh))
        }
    })
    .await
}

/// The refresh of `group` with that id, or (no id) its newest.
pub async fn refresh(
    asg: &AutoScaling,
    group: &str,
    id: Option<String>,
) -> Result<Option<InstanceRefresh>> {
    let ids: Vec<String> = id.into_iter().collect();
    Ok(asg
        .instance_refreshes(group, &ids, 1)
        .await?
        .into_iter()
        .next())
}

/// The groups carrying `tag` (the window guard's: ami-rollout's own refresh mark).
pub async fn groups_tagged(deps: &Deps, tag: &str) -> Result<Vec<GroupDetails>> {
    deps.aws.asg.groups_tagged(tag).await
}

pub async fn group(deps: &Deps, name: &str) -> Result<Option<GroupDetails>> {
    deps.aws.asg.group_details(name).await
}

pub async fn cluster_managed(deps: &Deps, cluster: &str) -> Result<bool> {
    deps.aws.ecs.is_managed(cluster).await
}

/// One of a check's follow-up reads, as decide asked for it.
pub async fn read(deps: &Deps, read: Read) -> Result<Found> {
    Ok(match read {
        Read::Images(ids) => Found::Images(images(deps, ids).await?),
        Read::Refreshes(groups) => Found::Refreshes(refreshes(deps, groups).await?),
        Read::Templates { group, template } => Found::Templates(
            group,
            Box::new(launch_templates(&deps.aws.ec2, &template).await?),
        ),
    })
}

/// The template's version and the newest one, in one call. A template that cannot be
/// read is left out (decide reports it); a throttle fails the check.
async fn launch_templates(ec2: &Ec2, template: &LaunchTemplateRef) -> Result<Templates> {
    let read = ec2
        .launch_template_versions(
            template.id.as_deref(),
            template.name.as_deref(),
            &templates::versions_to_read(template),
        )
        .await;
    match read {
        Ok(found) => Ok(templates::pick(template, &found)),
        Err(e) if !e.is_retryable() => {
            tracing::warn!(template = template.label(), error = %e, "launch template not readable");
            Ok(Templates::default())
        }
        Err(e) => Err(e),
    }
}

/// What a check looked at, for the log.
pub fn log_checked(observed: &Observed, parameter: Option<&str>) {
    let drifted = crate::drift::drifted(observed);
    tracing::info!(
        parameter = parameter.unwrap_or(""),
        groups = observed.groups.len(),
        instances = observed.groups.iter().map(|g| g.running.len()).sum::<usize>(),
        drifted = drifted.len(),
        drifted_groups = %drifted.join(","),
        "fleet checked"
    );
}

/// Runs `read` for every item, `CONCURRENT_READS` at a time, and returns the results in
/// the order of `items`; the first error in that order wins.
async fn concurrently<T, R, F, Fut>(items: Vec<T>, read: F) -> Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<R>>,
{
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(items)
        .map(read)
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await
}
