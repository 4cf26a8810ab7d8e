//! Every word ami-rollout says: decide returns reasons and outcomes as data, and this
//! module turns them into notification titles, descriptions, details and next steps
//! (and the few log lines that explain why an event is not acted on).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use shared::aws::autoscaling::InstanceRefresh;
use shared::aws::ssm::AmiParameter;
use shared::events::autoscaling::refresh::{Phase, RefreshEvent};
use shared::notify::{escape, Notice, Severity};

use crate::config::Config;
use crate::decide::{
    Candidate, Finding, ImageProblem, NoFit, NoParameter, NotOurs, NotRolled, Reason, Unsupported,
    Waiting,
};
use crate::observe::GroupState;
use crate::tags::{PARAMETER_TAG, ROLLOUT_TAG};
use crate::templates::{LaneProblem, NotResumable, RollMode, TemplateProblem};

/// How many group names a summary lists before it says "and N more".
const LIST_MAX: usize = 20;

/// What a check says about a group it reports rather than rolls.
pub fn finding(f: &Finding<'_>, config: &Config) -> Notice {
    let state = f.group;
    let name = state.name();
    match &f.reason {
        Reason::NotOptedIn => Notice::info(
            format!("Not checking {name}: cluster {} not opted in", state.cluster),
            format!(
                "Group `{name}` names cluster `{}`, which lacks the tag `ecs-autopilot:managed=true` (or does not exist), so its AMI is neither checked nor rolled.",
                state.cluster
            ),
        )
        .next_step("Tag the cluster ecs-autopilot:managed=true, or remove the group's ecs-autopilot:cluster tag."),
        Reason::NoParameter(why) => Notice::warning(
            format!("Not rolling {name}: no AMI parameter fits it"),
            format!("Group `{name}`: {why}. Its AMI is reported, never rolled, until it names its parameter."),
        )
        .next_step(format!("Tag the group {PARAMETER_TAG} (or {PARAMETER_TAG}:arm64 / {PARAMETER_TAG}:x86_64) with the SSM parameter of the image it should run; in a mixed instances group, tag each architecture or use resolve:ssm: in each override's launch template.")),
        Reason::ParameterUnusable(why) => Notice::warning(
            format!("Cannot check {name}: AMI parameter unusable"),
            format!(
                "Group `{name}` follows parameter `{}`: {}. Its AMI is not checked or rolled until the parameter names an AMI.",
                escape(&state.parameter, 200),
                escape(why, 300)
            ),
        )
        .detail("parameter", &state.parameter)
        .next_step(format!("Fix the parameter, or point the group's {PARAMETER_TAG} tag at the right one.")),
        Reason::Drifted { target, stale, why } => not_rolled(state, target, stale, why, config),
    }
}

fn not_rolled(
    state: &GroupState,
    target: &AmiParameter,
    stale: &BTreeMap<&str, &str>,
    why: &NotRolled<'_>,
    config: &Config,
) -> Notice {
    let name = state.name();
    let facts = drift_facts(state, target, stale);
    match why {
        NotRolled::Paused => Notice::info(
            format!("{name} drifted from {} but rollouts are paused", target.image_id),
            format!("{facts} The group carries `{ROLLOUT_TAG}=paused`, so it is not rolled."),
        )
        .detail("target_ami", &target.image_id)
        .detail("stale_instances", stale.len())
        .next_step(format!("Remove the {ROLLOUT_TAG} tag (or set it to anything but paused) to let the rollout proceed.")),
        NotRolled::Unsupported(why) => Notice::warning(
            format!("Cannot roll {name}: unsupported launch setup"),
            format!("{facts} It is not rolled: {why}."),
        )
        .detail("target_ami", &target.image_id)
        .next_step("Migrate the group to a launch template (launch configurations are deprecated), then the next check rolls it."),
        NotRolled::Refreshing(running) => Notice::info(
            format!("{name} is already being refreshed"),
            format!(
                "{facts} Instance refresh `{}` is {} ({}% done); AWS runs one refresh per group at a time, so nothing new was started.",
                running.id, running.status, running.percentage_complete.unwrap_or_default()
            ),
        )
        .detail("refresh_id", &running.id)
        .detail("refresh_status", &running.status),
        NotRolled::NotResumable { halted, why } => Notice::warning(
            format!("Not resuming {name}: halted refresh can't skip what it replaced"),
            format!(
                "{facts} ami-rollout halted instance refresh `{}` when the maintenance window closed; it is not resumed automatically: {why}.",
                halted.id
            ),
        )
        .detail("refresh_id", &halted.id)
        .detail("target_ami", &target.image_id)
        .next_step("Start an instance refresh yourself inside the window, or publish the next AMI (a new target starts a new rollout)."),
        NotRolled::FailedSince(failed) => Notice::warning(
            format!("Not retrying {name}: last refresh {}", failed.status),
            format!(
                "{facts} Instance refresh `{}` ended {} ({}) after the parameter last changed, so the same AMI is not rolled again automatically.",
                failed.id,
                failed.status,
                escape(failed.status_reason.as_deref().unwrap_or("no reason given"), 300)
            ),
        )
        .detail("refresh_id", &failed.id)
        .detail("target_ami", &target.image_id)
        .next_step("Find out why the refresh failed (new instances not joining the cluster, health checks, capacity).")
        .next_step("Publish a fixed AMI to the parameter, or start the instance refresh yourself once the cause is fixed."),
        NotRolled::LeftOver(done) => Notice::warning(
            format!("Not refreshing {name} again: drift left after a successful refresh"),
            format!(
                "{facts} Instance refresh `{}` ended Successful after the parameter last changed, yet these instances still differ: {}. Another refresh to the same AMI would leave them the same way, so none is started until the parameter names a new AMI.",
                done.id,
                left_over(state, stale, config)
            ),
        )
        .detail("refresh_id", &done.id)
        .detail("target_ami", &target.image_id)
        .detail("stale_instances", stale.keys().collect::<Vec<_>>())
        .next_step("Replace or unprotect the instances listed, or start an instance refresh yourself once the cause is fixed."),
        NotRolled::Image(why) => Notice::warning(
            format!("Not rolling {name}: {} is not an image it can run", target.image_id),
            format!("{facts} It is not rolled: {why}."),
        )
        .detail("target_ami", &target.image_id)
        .detail("parameter", &target.name)
        .next_step(format!("Point the group's {PARAMETER_TAG} tag (or {PARAMETER_TAG}:arm64 / :x86_64) at the parameter of an image of its architecture and OS family.")),
        NotRolled::Template(why) => Notice::warning(
            format!("Cannot roll {name}: launch template setup"),
            format!("{facts} It is not rolled: {why}"),
        )
        .detail("target_ami", &target.image_id)
        .next_step(format!("Point the group's {PARAMETER_TAG} tag at the parameter its launch template resolves, or use a literal AMI id or an unpinned resolve:ssm: in the template.")),
    }
}

fn drift_facts(state: &GroupState, target: &AmiParameter, stale: &BTreeMap<&str, &str>) -> String {
    let old: BTreeSet<&str> = stale.values().copied().collect();
    if !state.lanes.is_empty() {
        // A lane group: each lane against its own template's parameter.
        let lanes: Vec<String> = state
            .lanes
            .iter()
            .filter_map(|l| {
                let expected = state.expected.get(l.instances.first()?)?;
                let n = l.instances.iter().filter(|i| stale.contains_key(i.as_str())).count();
                Some(format!(
                    "{n} of the {} instance(s) launched from template `{}` run another AMI than `{expected}`, which parameter `{}` names",
                    l.instances.len(),
                    l.template.label(),
                    escape(&l.parameter, 200)
                ))
            })
            .collect();
        return format!(
            "{} of {} in-service instance(s) of mixed instances group `{}` (cluster `{}`) run an older AMI ({}): {}.",
            stale.len(),
            state.running.len(),
            state.name(),
            state.cluster,
            old.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
            lanes.join("; ")
        );
    }
    format!(
        "{} of {} in-service instance(s) of group `{}` (cluster `{}`) run {} instead of `{}`, which parameter `{}` (version {}) names.",
        stale.len(),
        state.running.len(),
        state.name(),
        state.cluster,
        old.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
        target.image_id,
        escape(&target.name, 200),
        target.version
    )
}

/// The stale instances, each with what may have kept a refresh from replacing it.
fn left_over(state: &GroupState, stale: &BTreeMap<&str, &str>, config: &Config) -> String {
    stale
        .iter()
        .take(LIST_MAX)
        .map(|(id, ami)| {
            let why = if state.details.protected.contains(*id) {
                format!(
                    "protected from scale in, and SCALE_IN_PROTECTED_INSTANCES is {}",
                    config.refresh.scale_in_protected_instances
                )
            } else {
                "not protected; it may have been in Standby, or launched from another launch template or version than the refresh compared".to_string()
            };
            format!("`{id}` runs `{ami}` ({why})")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a rollout says it starts.
pub fn rolling(c: &Candidate<'_>) -> Notice {
    let facts = drift_facts(c.state, c.target, &c.stale);
    let how = match &c.mode {
        RollMode::Current => "with the group's current launch configuration".to_string(),
        RollMode::NewVersion { template_id, source_version, .. } => format!(
            "to a new version of launch template `{template_id}` (a copy of version {source_version} with ImageId `{}`)",
            c.target.image_id
        ),
        RollMode::ExistingVersion { template } => format!(
            "to launch template `{}` version {}, which already has ImageId `{}`",
            template.label(),
            template.version,
            c.target.image_id
        ),
    };
    let s = &c.request.settings;
    let old: BTreeSet<&str> = c.stale.values().copied().collect();
    // What the stale instances are rolled to (a lane group: each lane's AMI).
    let to: BTreeSet<&str> = c
        .stale
        .keys()
        .map(|i| c.state.expected_ami(i, &c.target.image_id))
        .collect();
    let to = to.into_iter().collect::<Vec<_>>().join(", ");
    let (title, resumed) = match c.resumed {
        Some(h) => (
            format!("Resuming the rollout of {} to {to}", c.state.name()),
            format!(
                " It resumes instance refresh `{}`, which ami-rollout halted when the maintenance window closed: the instances it already replaced run that launch template version and are skipped.",
                h.id
            ),
        ),
        None => (format!("Rolling {} to {to}", c.state.name()), String::new()),
    };
    Notice::info(
        title,
        format!(
            "{facts}{resumed} Instance refresh {how}: {}{}, skip matching {}, auto rollback {}{}. instance-drain drains each instance through the group's terminate lifecycle hook before it goes.",
            match (s.min_healthy_percentage, s.max_healthy_percentage) {
                (None, None) => "healthy percentages from the group's instance maintenance policy".to_string(),
                (min, max) => format!(
                    "minimum healthy {}, maximum healthy {}",
                    min.map_or("(group's)".into(), |v| format!("{v}%")),
                    max.map_or("(group's)".into(), |v| format!("{v}%"))
                ),
            },
            if s.checkpoint_percentages.is_empty() {
                String::new()
            } else {
                format!(", checkpoints at {:?}%", s.checkpoint_percentages)
            },
            s.skip_matching,
            s.auto_rollback,
            if s.rollback_alarms.is_empty() {
                String::new()
            } else {
                format!(", alarms {:?}", s.rollback_alarms)
            }
        ),
    )
    .detail("target_ami", &c.target.image_id)
    .detail("parameter", &c.target.name)
    .detail("parameter_version", c.target.version)
    .detail("stale_instances", c.stale.len())
    .detail("instances", c.state.running.len())
    .detail("stale_amis", &old)
    .detail("mode", &c.mode)
    .detail("resumed_refresh_id", c.resumed.map(|h| h.id.as_str()))
    .detail("lanes", &c.state.lanes)
    .next_step(format!(
        "To stop it: aws autoscaling cancel-instance-refresh --auto-scaling-group-name {} and tag the group {ROLLOUT_TAG}=paused.",
        c.state.name()
    ))
}

fn listed(names: &[&str]) -> String {
    let mut text: Vec<String> = names
        .iter()
        .take(LIST_MAX)
        .map(|n| format!("`{n}`"))
        .collect();
    if names.len() > LIST_MAX {
        text.push(format!("and {} more", names.len() - LIST_MAX));
    }
    text.join(", ")
}

/// The one notification for every drifted group left for later.
pub fn waiting(w: &Waiting<'_>, config: &Config, now: DateTime<Utc>) -> Notice {
    let (window, budget, active) = (&w.window, &w.budget, &w.refreshing);
    let mut parts = vec![];
    let mut notice_details: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    if !window.is_empty() {
        let opens = config.next_rollout_start(now).unwrap_or(now);
        parts.push(format!(
            "{} drifted group(s) wait for the maintenance window ({}), which next opens {}: {}.",
            window.len(),
            config.window,
            opens.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            listed(window)
        ));
        notice_details.insert("waiting_for_window", serde_json::json!(window));
        notice_details.insert("window_opens", serde_json::json!(opens));
    }
    if !budget.is_empty() {
        parts.push(format!(
            "{} drifted group(s) wait for a rollout slot: MAX_CONCURRENT_ROLLOUTS is {} and {} group(s) are refreshing ({}). They are rolled oldest drift first by later checks: {}.",
            budget.len(),
            config.max_concurrent_rollouts,
            active.len(),
            listed(&active.iter().copied().collect::<Vec<_>>()),
            listed(budget)
        ));
        notice_details.insert("waiting_for_budget", serde_json::json!(budget));
        notice_details.insert("refreshing", serde_json::json!(active));
    }
    let mut notice = Notice::info(
        format!(
            "{} drifted group(s) waiting to be rolled",
            window.len() + budget.len()
        ),
        parts.join(" "),
    );
    for (k, v) in notice_details {
        notice = notice.detail(k, v);
    }
    notice
}

/// What the window guard says when it halts a refresh.
pub fn halting(
    name: &str,
    refresh: &InstanceRefresh,
    config: &Config,
    now: DateTime<Utc>,
) -> Notice {
    let closes = config.window.closes_at(now);
    let resumes = config.next_rollout_start(now);
    let at = |t: Option<DateTime<Utc>>| {
        t.map_or("now".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    Notice::info(
        format!("Halting the refresh of {name}: the maintenance window closes"),
        format!(
            "Instance refresh `{}` of group `{name}` is {} ({}% done, {} instance(s) still to replace). The maintenance window ({}) closes at {}, and WINDOW_END_MARGIN_SECONDS ({} s) leaves no time for another replacement and its drain, so ami-rollout cancels the refresh: a replacement in flight finishes, no new one starts. The next window ({}) resumes it, skipping the instances already on the target.",
            refresh.id,
            refresh.status,
            refresh.percentage_complete.unwrap_or_default(),
            refresh
                .instances_to_update
                .map_or("an unknown number of".to_string(), |n| n.to_string()),
            config.window,
            at(closes),
            config.window_end_margin.num_seconds(),
            at(resumes)
        ),
    )
    .detail("refresh_id", &refresh.id)
    .detail("window_closes", closes)
    .detail("resumes_at", resumes)
    .detail("percentage_complete", refresh.percentage_complete)
    .detail("instances_to_update", refresh.instances_to_update)
}

/// A halt whose refresh had ended by the time it was cancelled.
pub fn halt_already_ended(group: &str, planned: Notice) -> Notice {
    Notice {
        title: format!("{group}'s refresh had already ended"),
        description: format!(
            "{} Auto Scaling answered that no refresh is in progress any more (it ended since the guard looked), so there was nothing to halt.",
            planned.description
        ),
        ..planned
    }
}

/// A rollout whose group started refreshing since the check looked.
pub fn refresh_already_running(group: &str, planned: Notice) -> Notice {
    Notice {
        title: format!("{group} is already being refreshed"),
        description: format!(
            "{} Auto Scaling answered that a refresh is already in progress (started since this check looked), so no new one was started.",
            planned.description
        ),
        ..planned
    }
}

/// What a halt had done before marking the group failed.
pub fn cancelled_not_marked(refresh_id: &str) -> String {
    format!("refresh {refresh_id} was cancelled, but is not marked halted, so the next window will not resume it")
}

/// What a rollout had done before starting the refresh failed.
pub fn version_created(version: i64, template_id: &str, image_id: &str) -> String {
    format!("launch template version {version} of {template_id} with {image_id} was created")
}

/// A repeated outcome event.
pub fn already_reported(event: &RefreshEvent, state: &GroupState) -> Notice {
    Notice::info(
        format!("Instance refresh of {} already reported", state.name()),
        format!(
            "The outcome of instance refresh `{}` of group `{}` was reported when its first outcome event arrived; this repeated event changes nothing.",
            event.refresh_id,
            state.name()
        ),
    )
    .detail("refresh_id", &event.refresh_id)
    .detail("phase", event.phase)
}

/// How a refresh ended and what the group runs now.
pub fn refresh_ended(
    event: &RefreshEvent,
    state: &GroupState,
    refresh: Option<&InstanceRefresh>,
    target: Option<&AmiParameter>,
) -> Notice {
    let mut amis: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unregistered = 0;
    for ami in state.running.values() {
        match ami {
            Some(a) => *amis.entry(a.as_str()).or_default() += 1,
            None => unregistered += 1,
        }
    }
    let (severity, what) = match event.phase {
        Phase::Succeeded => (Severity::Info, "succeeded"),
        Phase::Cancelled => (Severity::Warning, "was cancelled"),
        Phase::RollbackSucceeded => (Severity::Warning, "was rolled back"),
        Phase::RollbackFailed => (Severity::High, "failed to roll back"),
        _ => (Severity::High, "failed"),
    };
    let running = if amis.is_empty() {
        "no registered container instances".to_string()
    } else {
        amis.iter()
            .map(|(a, n)| format!("`{a}` on {n} instance(s)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let target_text = target
        .map(|t| {
            let on_target = amis.get(t.image_id.as_str()).copied().unwrap_or_default();
            format!(
                " Parameter `{}` names `{}`; {} of {} in-service instance(s) run it.",
                escape(&t.name, 200),
                t.image_id,
                on_target,
                state.running.len()
            )
        })
        .unwrap_or_default();
    let reason = refresh
        .and_then(|r| r.status_reason.as_deref())
        .map(|r| format!(" AWS says: {}", escape(r, 400)))
        .unwrap_or_default();
    let mut notice = Notice::new(
        severity,
        format!("Instance refresh of {} {what}", state.name()),
        format!(
            "Instance refresh `{}` of group `{}` (cluster `{}`) {what}.{reason} The group now runs {running}{}.{target_text}",
            event.refresh_id,
            state.name(),
            state.cluster,
            if unregistered > 0 {
                format!(" ({unregistered} in-service instance(s) not yet registered in the cluster)")
            } else {
                String::new()
            }
        ),
    )
    .detail("refresh_id", &event.refresh_id)
    .detail("phase", event.phase)
    .detail("running_amis", &amis)
    .detail("unregistered_instances", unregistered);
    if let Some(r) = refresh {
        notice = notice
            .detail("refresh_status", &r.status)
            .detail("percentage_complete", r.percentage_complete);
    }
    if let Some(t) = target {
        notice = notice.detail("target_ami", &t.image_id);
    }
    if event.phase != Phase::Succeeded {
        notice = notice
            .next_step("Check the refresh in the Auto Scaling console (activity history) and the instance-drain notifications for instances that did not join or drain.")
            .next_step(format!("ami-rollout does not retry the same AMI automatically; tag the group {ROLLOUT_TAG}=paused to keep later AMIs off it too."));
    }
    notice
}

/// The cancel of a refresh the window guard halted: a halt, with when it resumes.
pub fn halted_for_window(
    mut notice: Notice,
    state: &GroupState,
    resumes_at: Option<DateTime<Utc>>,
) -> Notice {
    notice.severity = Severity::Info;
    notice.title = format!(
        "Instance refresh of {} halted for the maintenance window",
        state.name()
    );
    notice.description = format!(
        "{} ami-rollout cancelled it because the maintenance window was about to close; the instances it replaced keep the new AMI. It is resumed when the window next allows ({}), skipping the instances already on the target.",
        notice.description,
        resumes_at.map_or("no opening found".into(), |t| t
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    notice.next_steps.clear();
    notice
        .details
        .insert("resumes_at".into(), serde_json::json!(resumes_at));
    notice
}

/// Logs why an ended refresh is not reported.
pub fn log_not_ours(group: &str, why: &NotOurs) {
    match why {
        NotOurs::GroupGone => {
            tracing::info!(group = %group, "refresh ended for a group that no longer exists")
        }
        NotOurs::UnmanagedGroup => {
            tracing::info!(group = %group, "refresh ended on an unmanaged group; not ours to report")
        }
        NotOurs::UnmanagedCluster(cluster) => {
            tracing::info!(group = %group, cluster = %cluster, "refresh ended on a group of an unmanaged cluster")
        }
    }
}

fn amis(images: &[(String, String)]) -> String {
    images
        .iter()
        .map(|(id, name)| format!("`{id}` ({})", escape(name, 120)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for NoParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoParameter::Untagged(why) => write!(f, "it has no `{PARAMETER_TAG}` tag and {why}"),
            NoParameter::Lanes(why) => write!(
                f,
                "its mixed instances policy launches some instance types from other launch templates, and {why}"
            ),
            NoParameter::LaneUnusable {
                template,
                parameter,
                why,
            } => write!(
                f,
                "the instances of its launch template `{template}` follow parameter `{}`, which is unusable ({})",
                escape(parameter, 200),
                escape(why, 300)
            ),
        }
    }
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoFit::Undescribed { missing, total } => write!(
                f,
                "{missing} of the {total} image(s) its instances run could not be described, so the AMI family it can run is unknown"
            ),
            NoFit::NoneDescribed => f.write_str("none of its instances' images could be described (or none is registered in the cluster yet), so the AMI family it can run is unknown"),
            NoFit::NotPublished(images) => write!(
                f,
                "its instances run {}, not an ECS-optimized AMI AWS publishes a parameter for, so ami-rollout does not guess which image it can run",
                amis(images)
            ),
            NoFit::Mixed(images) => write!(
                f,
                "its instances run images of different families or architectures ({}), so no single parameter fits",
                amis(images)
            ),
        }
    }
}

impl fmt::Display for LaneProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaneProblem::NoMixedPolicy => f.write_str("it has no mixed instances policy"),
            LaneProblem::UnknownType { instance } => write!(
                f,
                "the instance type of `{instance}` is unknown, so which launch template it came from can't be told"
            ),
            LaneProblem::NoOverrideMatch { instance, kind } => write!(
                f,
                "`{instance}` ({kind}) matches no override by instance type, and an override by instance requirements has its own launch template, so which template it came from can't be told"
            ),
            LaneProblem::VersionUnread { version, template } => write!(
                f,
                "version `{version}` of its override launch template `{template}` could not be read"
            ),
            LaneProblem::Pinned {
                template_id,
                version,
                name,
                pin,
            } => write!(
                f,
                "launch template `{template_id}` version {version} resolves `{name}:{pin}`, pinned to one version of the parameter, so no newer AMI is ever launched from it"
            ),
            LaneProblem::LiteralUnknownArch {
                template_id,
                version,
                image_id,
            } => write!(
                f,
                "launch template `{template_id}` version {version} names the literal AMI `{image_id}`, whose architecture can't be told (it cannot be described)"
            ),
            LaneProblem::LiteralUntagged {
                template_id,
                version,
                image_id,
                arch,
                instances,
            } => write!(
                f,
                "launch template `{template_id}` version {version} names the literal AMI `{image_id}` ({arch}) and the group has no `{PARAMETER_TAG}:{arch}` tag, so which parameter its {instances} instance(s) follow can't be told"
            ),
            LaneProblem::OtherImage {
                template_id,
                version,
                value,
            } => write!(
                f,
                "launch template `{template_id}` version {version} has ImageId `{}`, neither an AMI id nor `resolve:ssm:NAME`",
                escape(value, 100)
            ),
        }
    }
}

impl fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateProblem::LiteralLanes(labels) => write!(
                f,
                "its mixed instances policy launches from launch templates with a literal AMI ({}); ami-rollout does not rewrite mixed instances policies, so the drift is reported, not rolled. Use resolve:ssm: in each of the group's launch templates.",
                labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
            ),
            TemplateProblem::NoTemplate => f.write_str("the group has no launch template."),
            TemplateProblem::VersionUnread { version, template } => write!(
                f,
                "version `{version}` of its launch template `{template}` could not be read."
            ),
            TemplateProblem::OtherParameter {
                template_id,
                version,
                name,
                selector,
                parameter,
            } => write!(
                f,
                "its launch template `{template_id}` version {version} resolves `{name}{}`, not the parameter `{parameter}` the group follows, so a refresh would not bring the AMI it should run.",
                selector.as_deref().map(|s| format!(":{s} (pinned)")).unwrap_or_default()
            ),
            TemplateProblem::MixedLiteral { template_id } => write!(
                f,
                "it uses a mixed instances policy around launch template `{template_id}` with a literal AMI; ami-rollout does not rewrite mixed instances policies."
            ),
            TemplateProblem::OtherImage {
                template_id,
                version,
                value,
            } => write!(
                f,
                "its launch template `{template_id}` version {version} has ImageId `{}`, neither an AMI id nor `resolve:ssm:NAME`.",
                escape(value, 100)
            ),
        }
    }
}

impl fmt::Display for NotResumable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotResumable::MixedInstances => "it is a mixed instances group, refreshed with its own configuration, and AWS's skip matching compares launch template versions, not AMIs, so a new refresh would replace the instances the halted one already replaced",
            NotResumable::NoDesiredTemplate => "the halted refresh had no desired launch template version, so skip matching has nothing to tell the instances it replaced by",
        })
    }
}

impl fmt::Display for Unsupported<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::LaunchConfiguration(name) => write!(
                f,
                "it launches from launch configuration `{name}`; ami-rollout only rolls groups with a launch template"
            ),
            Unsupported::Unknown => {
                f.write_str("its launch template or configuration could not be read")
            }
        }
    }
}

impl fmt::Display for ImageProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageProblem::TargetUnknown(ami) => write!(
                f,
                "the parameter's AMI `{ami}` cannot be described (deregistered, or not shared with this account), so it is not known to fit the group's instances"
            ),
            ImageProblem::LaneTargetUnknown(ami) => write!(
                f,
                "the AMI `{ami}` a lane's parameter names cannot be described, so it is not known to fit the instances"
            ),
            ImageProblem::RunningUnknown { ami, target } => write!(
                f,
                "the AMI `{ami}` its instances run cannot be described (deregistered, or not shared with this account), so `{target}` is not known to fit them"
            ),
            ImageProblem::Incompatible(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests;
