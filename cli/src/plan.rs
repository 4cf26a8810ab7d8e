//! `ecs-autopilot plan`: what the functions would do now. ami-rollout's scheduled check
//! is observed and decided by its own `check_plan` (the same reads and the same pure
//! `decide::check` as the Lambda), and nothing is acted on. instance-drain and
//! task-retirement act on events, not on a schedule: what they would do next is
//! what they hold (drains, quarantined hosts) and what they queued (retirements).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use shared::exec::{About, PlanStep, Report};
use shared::Result;

use ami_rollout::decide::Step;
use ami_rollout::Deps;

use crate::status::{Held, Scheduled, Status};

/// The whole answer of `plan --json` (documented in docs/cli.md).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub region: String,
    pub generated_at: DateTime<Utc>,
    pub ami_rollout: RolloutPlan,
    pub instance_drain: DrainPlan,
    pub task_retirement: RetirementPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutPlan {
    /// MAINTENANCE_WINDOW as the plan read it (`always` when unset).
    pub window: String,
    pub window_open: bool,
    pub window_opens: DateTime<Utc>,
    pub max_concurrent_rollouts: usize,
    /// The refreshes the check would start now, in the order it starts them.
    pub rollouts: Vec<Rollout>,
    pub waiting_for_window: Vec<String>,
    pub waiting_for_budget: Vec<String>,
    /// Groups whose refresh holds a slot of the budget.
    pub refreshing: Vec<String>,
    /// Groups the check reports on without rolling (paused, already refreshing, a
    /// failed refresh not retried, no parameter, an unsupported launch setup, ...).
    pub other: Vec<Other>,
    /// The plan exactly as ami-rollout's decide code returned it.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rollout {
    pub order: usize,
    pub group: String,
    pub cluster: String,
    pub target_ami: Option<Value>,
    pub stale_instances: Option<Value>,
    /// How: `current`, `new_version` or `existing_version` (ami-rollout's RollMode).
    pub mode: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Other {
    pub group: String,
    pub cluster: Option<String>,
    pub action: String,
    pub outcome: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrainPlan {
    /// Instances a hook holds: instance-drain keeps draining each on every look (or
    /// holds it, when quarantined) until it can let it go.
    pub held: Vec<HeldIn>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldIn {
    pub group: String,
    #[serde(flatten)]
    pub held: Held,
    pub quarantined: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetirementPlan {
    /// Replacements task-retirement put off to the maintenance window: its queued look
    /// replaces them there.
    pub scheduled: Vec<Scheduled>,
}

pub async fn plan(deps: &Deps, status: &Status, now: DateTime<Utc>) -> Result<Plan> {
    let steps = ami_rollout::check_plan(deps, None, None).await?;
    let config = &deps.config;
    Ok(Plan {
        region: status.region.clone(),
        generated_at: now,
        ami_rollout: rollout_plan(
            steps,
            config.window.to_string(),
            config.window.is_open(now),
            config.window.next_open(now),
            config.max_concurrent_rollouts,
        ),
        instance_drain: DrainPlan {
            held: status
                .groups
                .iter()
                .flat_map(|g| {
                    g.held.iter().map(|h| HeldIn {
                        group: g.name.clone(),
                        quarantined: g.quarantined.contains(&h.instance_id),
                        held: h.clone(),
                    })
                })
                .collect(),
        },
        task_retirement: RetirementPlan {
            scheduled: status.retirements_scheduled.clone(),
        },
    })
}

/// Sorts ami-rollout's steps into what an operator asks: what rolls, in what order,
/// what waits and for what.
pub fn rollout_plan(
    steps: Vec<Step>,
    window: String,
    window_open: bool,
    window_opens: DateTime<Utc>,
    max_concurrent_rollouts: usize,
) -> RolloutPlan {
    let mut plan = RolloutPlan {
        window,
        window_open,
        window_opens,
        max_concurrent_rollouts,
        rollouts: vec![],
        waiting_for_window: vec![],
        waiting_for_budget: vec![],
        refreshing: vec![],
        other: vec![],
        steps: vec![],
    };
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for step in &steps {
        match step {
            Step::Roll {
                group,
                cluster,
                mode,
                notice,
                ..
            } => plan.rollouts.push(Rollout {
                order: plan.rollouts.len() + 1,
                group: group.clone(),
                cluster: cluster.clone(),
                target_ami: notice.details.get("target_ami").cloned(),
                stale_instances: notice.details.get("stale_instances").cloned(),
                mode: serde_json::to_value(mode).unwrap_or_default(),
            }),
            Step::Report(Report {
                about: About { group: None, .. },
                notice,
                ..
            }) => {
                let d = &notice.details;
                plan.waiting_for_window
                    .extend(names(d.get("waiting_for_window")));
                plan.waiting_for_budget
                    .extend(names(d.get("waiting_for_budget")));
                plan.refreshing.extend(names(d.get("refreshing")));
            }
            Step::Report(Report {
                about:
                    About {
                        group: Some(group),
                        cluster,
                        ..
                    },
                action,
                outcome,
                notice,
            }) => plan.other.push(Other {
                group: group.clone(),
                cluster: cluster.clone(),
                action: action.to_string(),
                outcome: outcome.as_str().to_string(),
                title: notice.title.clone(),
            }),
            // The window guard's, not the check's; listed if it ever comes.
            Step::Halt {
                group,
                cluster,
                notice,
                ..
            } => plan.other.push(Other {
                group: group.clone(),
                cluster: Some(cluster.clone()),
                action: step.action().to_string(),
                outcome: "planned".to_string(),
                title: notice.title.clone(),
            }),
            Step::MarkReported { .. } => {}
        }
    }
    plan.steps = steps;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::notify::{Notice, Outcome};

    #[test]
    fn the_waiting_summary_and_group_reports_land_in_their_lists() {
        let waiting = Notice::info("2 drifted group(s) waiting to be rolled", "…")
            .detail("waiting_for_window", ["a"])
            .detail("waiting_for_budget", ["b"])
            .detail("refreshing", ["c"]);
        let steps = vec![
            Step::Report(Report {
                action: "rollout",
                outcome: Outcome::Skipped,
                about: About {
                    group: Some("p".into()),
                    cluster: Some("cl".into()),
                    ..About::default()
                },
                notice: Notice::info("p drifted but rollouts are paused", "…"),
            }),
            Step::Report(Report {
                action: "rollout",
                outcome: Outcome::Skipped,
                about: About::default(),
                notice: waiting,
            }),
        ];
        let plan = rollout_plan(steps, "always".into(), true, Utc::now(), 1);
        assert_eq!(plan.waiting_for_window, ["a"]);
        assert_eq!(plan.waiting_for_budget, ["b"]);
        assert_eq!(plan.refreshing, ["c"]);
        assert!(plan.rollouts.is_empty());
        assert_eq!(
            plan.other
                .iter()
                .map(|o| (o.group.as_str(), o.outcome.as_str()))
                .collect::<Vec<_>>(),
            [("p", "skipped")]
        );
        assert_eq!(plan.steps.len(), 2, "the raw plan is kept");
    }
}
