//! Hub mode (`ACCOUNTS`, docs/organization.md): a fleet-wide check (the schedule, an
//! ECS-optimized AMI release, the window guard) reads no fleet itself. It sends one
//! message per (account, Region) to the fan-out queue, and each message comes back to
//! ami-rollout as that one account and Region's check, within Lambda's limits and the
//! queue's bounded concurrency, with the rollout budget counted there.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use shared::aws::sqs::Queue;
use shared::events::Envelope;
use shared::tenancy::Accounts;
use shared::Result;

use crate::Deps;

/// The carry key a fanned-out message bears, so it is checked rather than fanned again.
const FANOUT: &str = "fanout";

pub fn is_fanned(event: &Envelope) -> bool {
    event
        .carry
        .as_ref()
        .and_then(|c| c.get(FANOUT))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Every (account, Region) a check fans out to: the listed accounts (or the
/// organization's active ones) and the hub's own, in each of `regions` (the hub's Region
/// when none is configured). Pure.
pub fn targets(
    home: &str,
    members: &[String],
    regions: &[String],
    home_region: &str,
) -> Vec<(String, String)> {
    let accounts: BTreeSet<&str> = members
        .iter()
        .map(String::as_str)
        .chain([home].into_iter().filter(|h| !h.is_empty()))
        .collect();
    let regions: Vec<&str> = if regions.is_empty() {
        vec![home_region]
    } else {
        regions.iter().map(String::as_str).collect()
    };
    accounts
        .into_iter()
        .flat_map(|a| regions.iter().map(move |r| (a.to_string(), r.to_string())))
        .collect()
}

/// The message for one target: the event itself, stamped with the target's account and
/// Region and marked as fanned.
pub fn message(event: &Envelope, account: &str, region: &str) -> String {
    let mut e = event.clone();
    e.id = format!("{}:{account}:{region}", event.id);
    e.account = account.to_string();
    e.region = region.to_string();
    let mut carry = e.carry.take().unwrap_or_else(|| json!({}));
    carry[FANOUT] = json!(true);
    e.carry = Some(carry);
    serde_json::to_string(&e).expect("an envelope serializes")
}

pub async fn fan_out(deps: &Deps, queue: &Queue, event: &Envelope) -> Result<()> {
    let tenancy = &deps.config.common.tenancy;
    let members: Vec<String> = match &tenancy.accounts {
        Accounts::List(ids) => ids.iter().cloned().collect(),
        Accounts::Org => deps.own.organizations.active_accounts().await?,
        Accounts::Single => vec![],
    };
    let home = shared::tenancy::current()
        .and_then(|s| s.account)
        .unwrap_or_default();
    let targets = targets(&home, &members, &tenancy.regions, &deps.own.region);
    let bodies: Vec<String> = targets
        .iter()
        .map(|(account, region)| message(event, account, region))
        .collect();
    queue.send_all(&bodies).await?;
    tracing::info!(
        event_id = %event.id,
        detail_type = %event.detail_type,
        targets = bodies.len(),
        accounts = targets.iter().map(|t| &t.0).collect::<BTreeSet<_>>().len(),
        "fanned out"
    );
    shared::metrics::emit(crate::config::FUNCTION, "fan-out", "done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_every_account_including_the_hub_in_every_region() {
        let members = vec!["222233334444".to_string(), "111122223333".to_string()];
        let regions = vec!["us-east-1".to_string(), "eu-west-1".to_string()];
        let t = targets("111122223333", &members, &regions, "us-east-1");
        assert_eq!(t.len(), 4, "the hub listed too is one account: {t:?}");
        assert!(t.contains(&("222233334444".into(), "eu-west-1".into())));
        let home_only = targets("111122223333", &[], &[], "ap-south-1");
        assert_eq!(
            home_only,
            [("111122223333".to_string(), "ap-south-1".to_string())]
        );
    }

    #[test]
    fn a_message_is_the_event_stamped_with_its_target_and_marked_fanned() {
        let event = Envelope {
            id: "s-1".into(),
            account: "111122223333".into(),
            ..shared::testing::event("Scheduled Event", "aws.events", json!({"check": "window"}))
        };
        assert!(!is_fanned(&event));
        let back = Envelope::parse_str(&message(&event, "222233334444", "eu-west-1")).unwrap();
        assert!(is_fanned(&back));
        assert_eq!(
            (
                back.account.as_str(),
                back.region.as_str(),
                back.id.as_str()
            ),
            ("222233334444", "eu-west-1", "s-1:222233334444:eu-west-1")
        );
        assert_eq!(back.detail, event.detail);
        assert_eq!(back.detail_type, event.detail_type);
    }
}
