//! Tables for a person. Plain text, columns padded to their widest cell.

use std::fmt::Write;

use chrono::SecondsFormat;

use crate::plan::Plan;
use crate::status::{GroupStatus, Status};

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (n, cell) in row.iter().enumerate() {
            widths[n] = widths[n].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (n, cell) in cells.iter().enumerate() {
            if n + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = widths[n]);
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn refresh_cell(g: &GroupStatus) -> String {
    match &g.refresh {
        None => "-".into(),
        Some(r) if r.active => {
            let mut cell = format!("{} {}%", r.status, r.percentage_complete.unwrap_or(0));
            if let Some(c) = r.next_checkpoint {
                let _ = write!(cell, " (checkpoint {c}%)");
            }
            cell
        }
        Some(r) => format!("last {}", r.status),
    }
}

fn drift_cell(g: &GroupStatus) -> String {
    if !g.cluster_managed {
        return "cluster not opted in".into();
    }
    let Some(target) = &g.target_ami else {
        return "no target AMI".into();
    };
    match g.drifted {
        0 => format!("none ({target})"),
        n => format!("{n}/{} -> {target}", g.instances),
    }
}

pub fn status(s: &Status) -> String {
    let mut out = format!(
        "ecs-autopilot status: {} at {}\n\n",
        s.region,
        s.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let rows: Vec<Vec<String>> = s
        .groups
        .iter()
        .map(|g| {
            let amis = g
                .amis
                .iter()
                .map(|(a, n)| format!("{a} x{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                g.cluster.clone(),
                g.name.clone(),
                g.instances.to_string(),
                if amis.is_empty() { "-".into() } else { amis },
                drift_cell(g),
                refresh_cell(g),
                g.held.len().to_string(),
                g.quarantined.len().to_string(),
                g.retirements_scheduled.len().to_string(),
                if g.paused { "paused" } else { "-" }.into(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "CLUSTER",
            "GROUP",
            "IN SERVICE",
            "AMIS",
            "DRIFT",
            "REFRESH",
            "HELD",
            "QUARANTINED",
            "RETIREMENTS",
            "ROLLOUT",
        ],
        &rows,
    ));
    let unused: Vec<&str> = s
        .clusters
        .iter()
        .filter(|c| c.groups.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(
            out,
            "\nManaged clusters with no opted-in group: {}",
            unused.join(", ")
        );
    }
    let problems: Vec<Vec<String>> = s
        .groups
        .iter()
        .filter_map(|g| Some(vec![g.name.clone(), g.parameter_problem.clone()?]))
        .collect();
    if !problems.is_empty() {
        out.push_str("\nNo AMI to compare with:\n");
        out.push_str(&table(&["GROUP", "WHY"], &problems));
    }
    let held: Vec<Vec<String>> = s
        .groups
        .iter()
        .flat_map(|g| {
            g.held.iter().map(|h| {
                vec![
                    g.name.clone(),
                    h.instance_id.clone(),
                    h.lifecycle_state.to_string(),
                    h.held_seconds.map_or("unknown".into(), duration),
                ]
            })
        })
        .collect();
    if !held.is_empty() {
        out.push_str("\nHeld by a lifecycle hook:\n");
        out.push_str(&table(&["GROUP", "INSTANCE", "STATE", "HELD FOR"], &held));
    }
    if !s.quarantined.is_empty() {
        out.push_str("\nQuarantined hosts:\n");
        let rows: Vec<Vec<String>> = s
            .quarantined
            .iter()
            .map(|q| {
                vec![
                    q.instance_id.clone(),
                    q.state.clone(),
                    q.group.clone().unwrap_or_else(|| "-".into()),
                    q.finding_type.clone().unwrap_or_else(|| q.finding.clone()),
                ]
            })
            .collect();
        out.push_str(&table(&["INSTANCE", "STATE", "GROUP", "FINDING"], &rows));
    }
    if !s.retirements_scheduled.is_empty() {
        out.push_str("\nRetirements scheduled for the maintenance window:\n");
        let rows: Vec<Vec<String>> = s
            .retirements_scheduled
            .iter()
            .map(|r| {
                vec![
                    r.kind.to_string(),
                    r.name.clone(),
                    r.cluster.clone(),
                    r.markers.len().to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&["KIND", "NAME", "CLUSTER", "NOTICES"], &rows));
    }
    out
}

pub fn plan(p: &Plan) -> String {
    let r = &p.ami_rollout;
    let mut out = format!(
        "ecs-autopilot plan: {} at {}\n\nami-rollout, next scheduled check: window {} ({}), at most {} rollout(s) at once\n",
        p.region,
        p.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        r.window,
        if r.window_open {
            "open now".to_string()
        } else {
            format!("opens {}", r.window_opens.to_rfc3339_opts(SecondsFormat::Secs, true))
        },
        r.max_concurrent_rollouts
    );
    let text = |v: &Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "-".into(),
    };
    let mut rows: Vec<Vec<String>> = r
        .rollouts
        .iter()
        .map(|o| {
            vec![
                o.order.to_string(),
                o.group.clone(),
                o.cluster.clone(),
                format!(
                    "roll to {} ({} stale, mode {})",
                    text(&o.target_ami),
                    text(&o.stale_instances),
                    o.mode["mode"].as_str().unwrap_or("?")
                ),
            ]
        })
        .collect();
    for g in &r.waiting_for_window {
        rows.push(vec![
            "-".into(),
            g.clone(),
            "".into(),
            "waits for the maintenance window".into(),
        ]);
    }
    for g in &r.waiting_for_budget {
        rows.push(vec![
            "-".into(),
            g.clone(),
            "".into(),
            "waits for a rollout slot (budget)".into(),
        ]);
    }
    for o in &r.other {
        rows.push(vec![
            "-".into(),
            o.group.clone(),
            o.cluster.clone().unwrap_or_default(),
            format!("{} {}: {}", o.action, o.outcome, o.title),
        ]);
    }
    if rows.is_empty() {
        out.push_str("nothing to do: no managed group drifted from its AMI\n");
    } else {
        out.push_str(&table(&["ORDER", "GROUP", "CLUSTER", "WOULD"], &rows));
    }
    if !r.refreshing.is_empty() {
        let _ = writeln!(
            out,
            "refreshing now (holding the budget): {}",
            r.refreshing.join(", ")
        );
    }
    out.push_str("\ninstance-drain (acts on lifecycle events): ");
    if p.instance_drain.held.is_empty() {
        out.push_str("no instance held by a hook\n");
    } else {
        out.push_str("keeps working on the instances hooks hold\n");
        let rows: Vec<Vec<String>> = p
            .instance_drain
            .held
            .iter()
            .map(|h| {
                vec![
                    h.group.clone(),
                    h.held.instance_id.clone(),
                    h.held.lifecycle_state.to_string(),
                    h.held.held_seconds.map_or("unknown".into(), duration),
                    if h.quarantined {
                        "hold (quarantined)"
                    } else if h.held.lifecycle_state.is_pending() {
                        "admit once it joins its cluster"
                    } else {
                        "drain, then let it go"
                    }
                    .into(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["GROUP", "INSTANCE", "STATE", "HELD FOR", "WOULD"],
            &rows,
        ));
    }
    out.push_str("\ntask-retirement (acts on AWS Health notices): ");
    if p.task_retirement.scheduled.is_empty() {
        out.push_str("nothing scheduled\n");
    } else {
        let names: Vec<String> = p
            .task_retirement
            .scheduled
            .iter()
            .map(|s| format!("{} {}", s.kind, s.name))
            .collect();
        let _ = writeln!(
            out,
            "replaces in the maintenance window: {}",
            names.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_is_not_padded() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(600), "10m");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(duration(3 * 86_400 + 7200), "3d2h");
    }
}
