//! ami-rollout's turns between observe and decide: each read's arguments come from
//! decide, each read from observe, and decide says when it has a plan (`Next`). The
//! handler (`lib.rs`) picks the turn for the intent; the CLI's `plan` and `status` use
//! the check's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use shared::aws::autoscaling::GroupDetails;
use shared::events::autoscaling::refresh::RefreshEvent;
use shared::Result;

use crate::decide::{self, GuardLook, Next, Plan};
use crate::observe::{self, Observed};
use crate::{notices, tags, Deps};

/// Observes the groups a check is about (all managed groups, those following
/// `parameter`, or those named in `only`), then what decide asks for next, and decides.
/// The CLI's `plan` calls it too (reads only).
pub async fn check_plan(
    deps: &Deps,
    parameter: Option<&str>,
    only: Option<&BTreeSet<String>>,
) -> Result<Plan> {
    let now = Utc::now();
    let managed = observe::opted_in_groups(&deps.aws.asg).await?;
    let targets = decide::targets(&managed, parameter, only, &deps.config);
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
    observed.fleet = decide::fleet(&managed);
    loop {
        match decide::next(&observed, &deps.config, now) {
            Next::Read(read) => observed.absorb(observe::read(deps, read).await?),
            Next::Plan(plan) => {
                observe::log_checked(&observed, parameter);
                return Ok(plan);
            }
        }
    }
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
    let config = &deps.config;
    let managed_clusters = observe::managed_clusters(deps).await?;
    let clusters = decide::clusters_to_read(targets, &managed_clusters);
    let ami_of = observe::amis_running(deps, clusters).await?;
    let mut groups = decide::group_states(targets, &managed_clusters, &ami_of, config);
    let lane_versions = observe::lane_versions(deps, decide::lane_reads(&groups)).await?;
    let ids = decide::images_to_choose(&groups, &lane_versions, config);
    let images = observe::images(deps, ids).await?;
    decide::choose_parameters(&mut groups, &lane_versions, &images, config);
    decide::keep_following(&mut groups, changed);
    let parameters = observe::parameters(deps, decide::parameters_to_read(&groups)).await?;
    decide::expect_all_lanes(&mut groups, &parameters);
    Ok(Observed {
        groups,
        parameters,
        images,
        managed_clusters,
        ..Observed::default()
    })
}

/// The window guard (every few minutes while a window is configured): when the window
/// is about to close, halt ami-rollout's own running refreshes; when it allows rollouts
/// again, resume the halted ones. One DescribeAutoScalingGroups per 100 groups that
/// carry ami-rollout's refresh tag, and one DescribeInstanceRefreshes per refresh of its
/// own still running at the close; nothing at all without a window.
pub(crate) async fn guard_plan(deps: &Deps) -> Result<Plan> {
    let now = Utc::now();
    if !decide::guards(&deps.config) {
        tracing::info!("no maintenance window: nothing to halt or resume");
        return Ok(vec![]);
    }
    let groups = observe::groups_tagged(deps, tags::REFRESH_TAG).await?;
    match decide::guard_look(&groups, &deps.config, now) {
        GuardLook::Halt(reads) => {
            let found = observe::refresh_of_each(deps, reads).await?;
            Ok(decide::halts(&groups, &found, &deps.config, now))
        }
        GuardLook::Resume(halted) if halted.is_empty() => Ok(vec![]),
        GuardLook::Resume(halted) => {
            tracing::info!(groups = %halted.iter().cloned().collect::<Vec<_>>().join(","), "resuming halted rollouts");
            Ok(decide::resumes(
                check_plan(deps, None, Some(&halted)).await?,
            ))
        }
    }
}

/// Reads the group, its refresh and what its instances run, and says how it ended.
pub(crate) async fn outcome_plan(deps: &Deps, event: &RefreshEvent) -> Result<Plan> {
    let config = &deps.config;
    let details = observe::group(deps, &event.group).await?;
    let (details, cluster) = match decide::outcome_scope(details.as_ref()) {
        Ok(scope) => scope,
        Err(why) => {
            notices::log_not_ours(&event.group, &why);
            return Ok(vec![]);
        }
    };
    if !observe::cluster_managed(deps, cluster).await? {
        let why = decide::NotOurs::UnmanagedCluster(cluster.to_string());
        notices::log_not_ours(&event.group, &why);
        return Ok(vec![]);
    }
    let id = Some(event.refresh_id.clone());
    let refresh = observe::refresh(&deps.aws.asg, &event.group, id).await?;
    let ami_of = observe::amis_running(deps, vec![cluster.to_string()]).await?;
    let mut states = [decide::group_state(
        details,
        true,
        cluster.into(),
        config,
        &ami_of,
    )];
    let no_lanes = BTreeMap::new();
    let ids = decide::images_to_choose(&states, &no_lanes, config);
    let images = observe::images(deps, ids).await?;
    decide::choose_parameters(&mut states, &no_lanes, &images, config);
    let parameters = observe::parameters(deps, decide::parameters_to_read(&states)).await?;
    let [state] = states;
    Ok(decide::refresh_outcome(
        event,
        &state,
        refresh.as_ref(),
        parameters.found.get(&state.parameter),
        config.next_rollout_start(Utc::now()),
    ))
}
