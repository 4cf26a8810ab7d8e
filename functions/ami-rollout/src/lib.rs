//! ami-rollout: keeps every opted-in Auto Scaling group on the AMI its SSM parameter
//! names, by starting instance refreshes on groups that drifted, one budgeted group at a
//! time and only inside the maintenance window; and reports how each refresh ended.
//!
//! parse (event → intent) → observe (groups, parameters, container instances, then
//! refreshes and launch templates only if something may roll) → decide (pure plan) → act.

pub mod act;
pub mod config;
pub mod decide;
pub mod fanout;
pub mod images;
pub mod parse;

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use shared::aws::autoscaling::{AutoScaling, GroupDetails, LaunchSource, LifecycleState};
use shared::aws::ec2::{Ec2, ImageRef, TemplateVersion};
use shared::aws::ecs::Ecs;
use shared::aws::ssm::Ssm;
use shared::events::autoscaling::refresh::RefreshEvent;
use shared::events::Envelope;
use shared::notify::{Reporter, Subject};
use shared::Result;

use config::Config;
use decide::{GroupState, Observed, Templates};
use parse::Intent;

/// Reads in flight at once: per-cluster and per-group reads of a large fleet overlap
/// instead of queueing behind each other; well under the APIs' rate limits.
const CONCURRENT_READS: usize = 8;

/// Refreshes read per group: the newest decides, a few more cover a refresh that
/// started just before a failed one.
const REFRESHES_PER_GROUP: i32 = 5;

/// Everything the handler needs from the world, built once per cold start.
pub struct Deps {
    pub config: Config,
    pub ecs: Ecs,
    pub asg: AutoScaling,
    pub ec2: Ec2,
    pub ssm: Ssm,
    pub reporter: Reporter,
    /// Hub mode: where the scheduled check fans out to, and the organization's accounts.
    pub fanout: Option<shared::aws::sqs::Queue>,
    pub organizations: shared::aws::organizations::Organizations,
    /// The hub's own Region.
    pub region: String,
}

impl Deps {
    /// The adapters built from one SDK configuration, with the function's settings.
    pub fn new(aws: &shared::aws::Aws, config: &Config) -> Self {
        Deps {
            ecs: aws.ecs(),
            asg: aws.autoscaling(),
            ec2: aws.ec2(),
            ssm: aws.ssm(),
            reporter: aws.reporter(&config.common),
            fanout: config.fanout_queue_url.as_deref().map(|url| aws.queue(url)),
            organizations: aws.organizations(),
            region: aws.region(),
            config: config.clone(),
        }
    }
}

// The ECS-optimized AMI release notification arrives SNS-shaped.
shared::function!(
    Deps,
    config::Config,
    Deps::new,
    handle,
    translate = shared::events::ssm::sns_records_to_envelopes
);

/// Every group tagged `ecs-autopilot:cluster` with a non-empty cluster name.
pub async fn opted_in_groups(asg: &AutoScaling) -> Result<Vec<GroupDetails>> {
    Ok(asg
        .managed_groups()
        .await?
        .into_iter()
        .filter(|g| g.group.cluster().is_some())
        .collect())
}

pub async fn handle(deps: &Deps, event: Envelope) -> Result<()> {
    let intent = parse::intent(&event)?;
    if let (Intent::CheckAll { .. } | Intent::WindowGuard, Some(queue)) = (&intent, &deps.fanout) {
        if !fanout::is_fanned(&event) {
            return fanout::fan_out(deps, queue, &event).await;
        }
    }
    let subject = Subject {
        event_id: event.id.clone(),
        kind: intent.kind().to_string(),
        ..Subject::default()
    };
    let observed = match &intent {
        Intent::Ignore(reason) => {
            tracing::info!(event_id = %event.id, reason = %reason, "ignored");
            return Ok(());
        }
        Intent::CheckAll { why, .. } => {
            tracing::info!(event_id = %event.id, why = %why, "checking every managed group");
            check_plan(deps, None, None).await
        }
        Intent::CheckParameter(change) => check_plan(deps, Some(&change.name), None).await,
        Intent::RefreshEnded(refresh) => outcome_plan(deps, refresh).await,
        Intent::WindowGuard => guard_plan(deps).await,
    };
    match observed {
        Ok(plan) => act::execute(deps, &subject, plan).await,
        Err(e) => {
            deps.reporter.failure(&subject, "observe", &e).await;
            Err(e)
        }
    }
}

/// The window guard (every few minutes while a window is configured): when the window
/// is about to close, halt ami-rollout's own running refreshes; when it allows rollouts
/// again, resume the halted ones. One DescribeAutoScalingGroups per 100 groups that
/// carry ami-rollout's refresh tag, and one DescribeInstanceRefreshes per refresh of its
/// own still running at the close; nothing at all without a window.
async fn guard_plan(deps: &Deps) -> Result<decide::Plan> {
    let now = Utc::now();
    if deps.config.window.is_always() {
        tracing::info!("no maintenance window: nothing to halt or resume");
        return Ok(vec![]);
    }
    let groups = deps.asg.groups_tagged(decide::REFRESH_TAG).await?;
    match decide::guard_look(&groups, &deps.config, now) {
        decide::GuardLook::Halt(reads) => {
            let found = concurrently(reads, |(group, id)| {
                let asg = deps.asg.clone();
                async move {
                    let ids: Vec<String> = id.into_iter().collect();
                    let refresh = asg
                        .instance_refreshes(&group, &ids, 1)
                        .await?
                        .into_iter()
                        .next();
                    Ok((group, refresh))
                }
            })
            .await?;
            Ok(found
                .into_iter()
                .filter_map(|(group, refresh)| {
                    let details = groups.iter().find(|g| g.group.name == group)?;
                    decide::halt_plan(details, refresh.as_ref()?, &deps.config, now)
                })
                .collect())
        }
        decide::GuardLook::Resume(halted) if halted.is_empty() => Ok(vec![]),
        decide::GuardLook::Resume(halted) => {
            tracing::info!(groups = %halted.iter().cloned().collect::<Vec<_>>().join(","), "resuming halted rollouts");
            // Only the rollouts: everything else is the scheduled check's to report.
            Ok(check_plan(deps, None, Some(&halted))
                .await?
                .into_iter()
                .filter(|s| matches!(s, decide::Step::Roll { .. }))
                .collect())
        }
    }
}

/// Observes the groups a check is about (all managed groups, those following
/// `parameter`, or those named in `only`) and decides. The CLI's `plan` calls it too
/// (reads only).
pub async fn check_plan(
    deps: &Deps,
    parameter: Option<&str>,
    only: Option<&BTreeSet<String>>,
) -> Result<decide::Plan> {
    let now = Utc::now();
    let managed = opted_in_groups(&deps.asg).await?;
    // A group whose parameter depends on its image may follow the changed one; the
    // choice is made once the images are read, and the rest dropped then.
    let targets: Vec<&GroupDetails> = managed
        .iter()
        .filter(|g| only.is_none_or(|names| names.contains(&g.group.name)))
        .filter(|g| {
            parameter.is_none_or(|p| {
                decide::needs_images(g, &deps.config)
                    || decide::has_lanes(g)
                    || decide::parameter_of(g, &deps.config) == p
            })
        })
        .collect();
    if targets.is_empty() {
        // Every parameter change in the account reaches us; most are not AMIs.
        tracing::info!(
            parameter = parameter.unwrap_or(""),
            managed_groups = managed.len(),
            "no managed group to check"
        );
        return Ok(vec![]);
    }
    let mut observed = observe_groups(deps, &targets, parameter).await?;
    let rollable = decide::rollable(&observed, &deps.config, now);
    if !rollable.is_empty() {
        // Target images and the images they would replace, in one call for the check.
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for g in &rollable {
            if let Some(target) = observed.parameters.found.get(&g.parameter) {
                ids.extend(g.stale(&target.image_id).into_values().map(str::to_string));
                ids.insert(target.image_id.clone());
                // A lane group's instances are compared with their lane's AMI.
                ids.extend(g.expected.values().cloned());
            }
        }
        let missing: Vec<String> = ids
            .into_iter()
            .filter(|id| !observed.images.contains_key(id))
            .collect();
        if !missing.is_empty() {
            let found = deps.ec2.images(&missing).await?;
            observed.images.extend(found);
        }
        // The budget is fleet-wide, so the refreshes of every group that could hold a
        // slot count: groups of opted-in clusters. Groups of clusters that never opted
        // in are not read (they cost nothing).
        let names: Vec<String> = managed
            .iter()
            .filter(|g| {
                g.group
                    .cluster()
                    .is_some_and(|c| observed.managed_clusters.contains(c))
            })
            .map(|g| g.group.name.clone())
            .collect();
        observed.refreshes = concurrently(names, |name| {
            let asg = deps.asg.clone();
            async move {
                let refreshes = asg
                    .instance_refreshes(&name, &[], REFRESHES_PER_GROUP)
                    .await?;
                Ok((name, refreshes))
            }
        })
        .await?
        .into_iter()
        .collect();
        let (order, slots) = decide::roll_order(&observed, &deps.config, now);
        let order: Vec<(String, LaunchSource)> = order
            .into_iter()
            .map(|g| (g.name().to_string(), g.details.launch.clone()))
            .collect();
        let mut rollable = 0;
        for (name, launch) in order {
            if rollable >= slots {
                break;
            }
            let templates = read_templates(&deps.ec2, &launch).await?;
            observed.templates.insert(name.clone(), templates);
            if decide::can_roll(&observed, &name, &deps.config) {
                rollable += 1;
            }
        }
    }
    log_check(&observed, parameter);
    Ok(decide::check(&observed, &deps.config, now))
}

/// Cluster opt-in, container instances, images where a group's parameter depends on
/// them, and parameters of `targets`, batched: one list and one describe per hundred
/// container instances of each cluster, one DescribeImages per 200 images, one
/// GetParameters per ten parameters. With `changed`, only the groups following that
/// parameter are kept. The CLI's `status` reads drift through it.
pub async fn observe_groups(
    deps: &Deps,
    targets: &[&GroupDetails],
    changed: Option<&str>,
) -> Result<Observed> {
    let managed_clusters: BTreeSet<String> =
        deps.ecs.managed_clusters().await?.into_iter().collect();
    let clusters: BTreeSet<&str> = targets
        .iter()
        .filter_map(|g| g.group.cluster())
        .filter(|c| managed_clusters.contains(*c))
        .collect();
    let clusters: Vec<String> = clusters.into_iter().map(str::to_string).collect();
    let ami_of: BTreeMap<String, Option<String>> = concurrently(clusters, |cluster| {
        let ecs = deps.ecs.clone();
        async move { ecs.container_instances(&cluster).await }
    })
    .await?
    .into_iter()
    .flatten()
    .map(|ci| (ci.ec2_instance_id, ci.ami_id))
    .collect();
    let mut groups: Vec<GroupState> = targets
        .iter()
        .map(|g| {
            let cluster = g.group.cluster().unwrap_or_default().to_string();
            state(
                g,
                managed_clusters.contains(&cluster),
                cluster,
                decide::parameter_of(g, &deps.config),
                &ami_of,
            )
        })
        .collect();
    let lane_versions = read_lane_templates(deps, &groups).await?;
    let images = choose_parameters(deps, &mut groups, &lane_versions).await?;
    if let Some(p) = changed {
        groups.retain(|g| g.parameter == p || g.lanes.iter().any(|l| l.parameter == p));
    }
    let parameters: BTreeSet<String> = groups
        .iter()
        .filter(|g| g.cluster_managed && !g.parameter.is_empty())
        .flat_map(|g| {
            std::iter::once(g.parameter.clone()).chain(g.lanes.iter().map(|l| l.parameter.clone()))
        })
        .collect();
    let parameters = if parameters.is_empty() {
        shared::aws::ssm::AmiParameters::default()
    } else {
        deps.ssm
            .ami_parameters(&parameters.into_iter().collect::<Vec<_>>())
            .await?
    };
    for g in groups.iter_mut().filter(|g| !g.lanes.is_empty()) {
        decide::expect_lanes(g, &parameters);
    }
    Ok(Observed {
        groups,
        parameters,
        images,
        managed_clusters,
        ..Observed::default()
    })
}

/// Sets the parameter of each group of an opted-in cluster whose parameter depends on
/// the images its instances run (one DescribeImages per 200 images for all of them);
/// returns the images read.
async fn choose_parameters(
    deps: &Deps,
    groups: &mut [GroupState],
    lane_versions: &BTreeMap<String, BTreeMap<String, TemplateVersion>>,
) -> Result<BTreeMap<String, shared::aws::ec2::Image>> {
    let needing: Vec<usize> = (0..groups.len())
        .filter(|&n| {
            groups[n].cluster_managed
                && (decide::needs_images(&groups[n].details, &deps.config)
                    || lane_versions.contains_key(groups[n].name()))
        })
        .collect();
    // Lane groups' literal AMIs: their architecture picks the group's tag.
    let literal = lane_versions
        .values()
        .flat_map(|v| v.values())
        .filter_map(|v| match &v.image {
            ImageRef::Ami { image_id } => Some(image_id.clone()),
            _ => None,
        });
    let ids: BTreeSet<String> = needing
        .iter()
        .flat_map(|&n| groups[n].running.values().flatten().cloned())
        .chain(literal)
        .collect();
    if ids.is_empty() && needing.is_empty() {
        return Ok(BTreeMap::new());
    }
    let images = if ids.is_empty() {
        BTreeMap::new()
    } else {
        deps.ec2
            .images(&ids.into_iter().collect::<Vec<_>>())
            .await?
    };
    for n in needing {
        let g = &mut groups[n];
        let running: BTreeSet<&String> = g.running.values().flatten().collect();
        let described: Vec<&shared::aws::ec2::Image> =
            running.iter().filter_map(|id| images.get(*id)).collect();
        let chosen = if described.len() < running.len() {
            Err(format!(
                "{} of the {} image(s) its instances run could not be described, so the AMI family it can run is unknown",
                running.len() - described.len(),
                running.len()
            ))
        } else {
            decide::choose_parameter(&g.details, &deps.config, &described)
        };
        match chosen {
            Ok(p) => g.parameter = p,
            Err(why) => {
                g.parameter = String::new();
                g.no_parameter = Some(format!(
                    "it has no `{}` tag and {why}",
                    decide::PARAMETER_TAG
                ));
            }
        }
        // A mixed instances group with override templates: each lane's parameter.
        if let Some(versions) = lane_versions.get(g.name()) {
            match decide::lanes(&g.details, versions, &images, &g.running) {
                Ok(lanes) => {
                    g.parameter = lanes[0].parameter.clone();
                    g.no_parameter = None;
                    g.lanes = lanes;
                }
                Err(why) => {
                    g.parameter = String::new();
                    g.no_parameter = Some(format!(
                        "its mixed instances policy launches some instance types from other launch templates, and {why}"
                    ));
                }
            }
        }
    }
    Ok(images)
}

/// The launch template versions of each lane group's lanes (mixed instances groups
/// with override templates only: one DescribeLaunchTemplateVersions per template of
/// such a group; other groups cost nothing here). A template that can't be read is
/// left out, and the group is reported.
async fn read_lane_templates(
    deps: &Deps,
    groups: &[GroupState],
) -> Result<BTreeMap<String, BTreeMap<String, TemplateVersion>>> {
    let reads: Vec<(String, shared::aws::autoscaling::LaunchTemplateRef)> = groups
        .iter()
        .filter(|g| g.cluster_managed && decide::has_lanes(&g.details))
        .flat_map(|g| {
            decide::lane_templates(&g.details)
                .into_iter()
                .map(|t| (g.name().to_string(), t))
        })
        .collect();
    let read = concurrently(reads, |(group, template)| {
        let ec2 = deps.ec2.clone();
        async move {
            let source = LaunchSource::LaunchTemplate {
                template: template.clone(),
            };
            let found = read_templates(&ec2, &source).await?;
            Ok((group, decide::lane_key(&template), found.current))
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

fn state(
    details: &GroupDetails,
    cluster_managed: bool,
    cluster: String,
    parameter: String,
    ami_of: &BTreeMap<String, Option<String>>,
) -> GroupState {
    let running = details
        .group
        .instances
        .iter()
        .filter(|i| i.lifecycle_state == LifecycleState::InService)
        .map(|i| {
            let ami = ami_of.get(&i.instance_id).cloned().flatten();
            (i.instance_id.clone(), ami)
        })
        .collect();
    GroupState {
        details: details.clone(),
        cluster,
        cluster_managed,
        parameter,
        no_parameter: None,
        lanes: vec![],
        expected: BTreeMap::new(),
        running,
    }
}

/// The group's launch template version and the newest one, in one call. A template
/// that cannot be read is left out (decide reports it); a throttle fails the check.
async fn read_templates(ec2: &Ec2, launch: &LaunchSource) -> Result<Templates> {
    let template = match launch {
        LaunchSource::LaunchTemplate { template } | LaunchSource::MixedInstances { template } => {
            template
        }
        _ => return Ok(Templates::default()),
    };
    let mut versions = vec![template.version.clone()];
    if template.version != "$Latest" {
        versions.push("$Latest".into());
    }
    let read = ec2
        .launch_template_versions(template.id.as_deref(), template.name.as_deref(), &versions)
        .await;
    let found = match read {
        Ok(found) => found,
        Err(e) if !e.is_retryable() => {
            tracing::warn!(template = template.label(), error = %e, "launch template not readable");
            return Ok(Templates::default());
        }
        Err(e) => return Err(e),
    };
    let latest = found.iter().max_by_key(|v| v.version).cloned();
    let current = match template.version.as_str() {
        "$Latest" => latest.clone(),
        "$Default" => found.iter().find(|v| v.is_default).cloned(),
        number => found
            .iter()
            .find(|v| number.parse() == Ok(v.version))
            .cloned(),
    };
    Ok(Templates { current, latest })
}

fn log_check(observed: &Observed, parameter: Option<&str>) {
    let drifted: Vec<&str> = observed
        .groups
        .iter()
        .filter(|g| {
            observed
                .parameters
                .found
                .get(&g.parameter)
                .is_some_and(|p| !g.stale(&p.image_id).is_empty())
        })
        .map(GroupState::name)
        .collect();
    tracing::info!(
        parameter = parameter.unwrap_or(""),
        groups = observed.groups.len(),
        instances = observed.groups.iter().map(|g| g.running.len()).sum::<usize>(),
        drifted = drifted.len(),
        drifted_groups = %drifted.join(","),
        "fleet checked"
    );
}

/// Reads the group, its refresh and what its instances run, and says how it ended.
async fn outcome_plan(deps: &Deps, event: &RefreshEvent) -> Result<decide::Plan> {
    let Some(details) = deps.asg.group_details(&event.group).await? else {
        tracing::info!(group = %event.group, "refresh ended for a group that no longer exists");
        return Ok(vec![]);
    };
    let Some(cluster) = details.group.cluster().map(str::to_string) else {
        tracing::info!(group = %event.group, "refresh ended on an unmanaged group; not ours to report");
        return Ok(vec![]);
    };
    if !deps.ecs.is_managed(&cluster).await? {
        tracing::info!(group = %event.group, cluster = %cluster, "refresh ended on a group of an unmanaged cluster");
        return Ok(vec![]);
    }
    let refresh = deps
        .asg
        .instance_refreshes(&event.group, std::slice::from_ref(&event.refresh_id), 1)
        .await?
        .into_iter()
        .next();
    let ami_of: BTreeMap<String, Option<String>> = deps
        .ecs
        .container_instances(&cluster)
        .await?
        .into_iter()
        .map(|ci| (ci.ec2_instance_id, ci.ami_id))
        .collect();
    let parameter = decide::parameter_of(&details, &deps.config);
    let mut states = [state(&details, true, cluster, parameter, &ami_of)];
    choose_parameters(deps, &mut states, &BTreeMap::new()).await?;
    let [state] = states;
    let parameters = if state.parameter.is_empty() {
        shared::aws::ssm::AmiParameters::default()
    } else {
        deps.ssm
            .ami_parameters(std::slice::from_ref(&state.parameter))
            .await?
    };
    Ok(decide::refresh_outcome(
        event,
        &state,
        refresh.as_ref(),
        parameters.found.get(&state.parameter),
        deps.config.next_rollout_start(Utc::now()),
    ))
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
