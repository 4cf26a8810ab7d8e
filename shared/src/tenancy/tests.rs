use std::time::{Duration, SystemTime};

use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
use aws_sdk_sts::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use serde_json::json;

use super::*;
use crate::testing::{self, aws_error};

const HUB: &str = "111122223333";
const MEMBER: &str = "222233334444";

fn event(account: &str, region: &str) -> Envelope {
    Envelope {
        account: account.into(),
        region: region.into(),
        ..testing::event(
            "EC2 Instance-terminate Lifecycle Action",
            "aws.autoscaling",
            json!({}),
        )
    }
}

fn finding(event_account: &str, detail_account: &str, detail_region: &str) -> Envelope {
    let mut e = event(event_account, "us-east-1");
    e.source = "aws.guardduty".into();
    e.detail = json!({"accountId": detail_account, "region": detail_region});
    e
}

fn list(ids: &[&str]) -> Accounts {
    Accounts::List(ids.iter().map(|s| s.to_string()).collect())
}

fn admitted(e: &Envelope, accounts: &Accounts) -> std::result::Result<Scope, Skip> {
    admit(e, Some(HUB), Some("us-east-1"), accounts)
}

#[test]
fn accounts_parse_empty_org_and_ids_and_reject_anything_else() {
    assert_eq!(Accounts::parse(None).unwrap(), Accounts::Single);
    assert_eq!(Accounts::parse(Some("  ")).unwrap(), Accounts::Single);
    assert_eq!(Accounts::parse(Some("ORG")).unwrap(), Accounts::Org);
    assert_eq!(
        Accounts::parse(Some(" 222233334444, 333344445555 ")).unwrap(),
        list(&["222233334444", "333344445555"])
    );
    for bad in ["12345", "22223333444a", "222233334444;333344445555", "all"] {
        let e = Accounts::parse(Some(bad)).unwrap_err();
        assert_eq!(e.var, "ACCOUNTS", "{bad}");
    }
}

#[test]
fn tenancy_defaults_to_single_account_and_names_the_member_role_after_the_function() {
    let t = Tenancy::from_env("instance-drain", &Env::from_pairs([("X", "y")])).unwrap();
    assert!(!t.is_hub());
    assert_eq!(t.role_name, "ecs-autopilot-instance-drain");
    assert_eq!(
        t.role_arn("aws", MEMBER),
        "arn:aws:iam::222233334444:role/ecs-autopilot-instance-drain"
    );
    let hub = Tenancy::from_env(
        "ami-rollout",
        &Env::from_pairs([
            ("ACCOUNTS", "org"),
            ("MEMBER_ROLE_NAME", "ops-rollout"),
            ("MEMBER_EXTERNAL_ID", "secret-1"),
            ("REGIONS", "us-east-1, eu-west-1"),
        ]),
    )
    .unwrap();
    assert!(hub.is_hub());
    assert_eq!(hub.external_id.as_deref(), Some("secret-1"));
    assert_eq!(hub.regions, ["us-east-1", "eu-west-1"]);
    for (var, value) in [
        ("MEMBER_ROLE_NAME", "role/with/slashes"),
        ("MEMBER_EXTERNAL_ID", "x"),
        ("REGIONS", "us-east-1,EU WEST"),
    ] {
        let e = Tenancy::from_env("f", &Env::from_pairs([(var, value)])).unwrap_err();
        assert_eq!(e.var, var);
    }
}

#[test]
fn single_account_mode_skips_other_accounts_and_regions_and_acts_at_home() {
    let home = admitted(&event(HUB, "us-east-1"), &Accounts::Single).unwrap();
    assert_eq!(
        home,
        Scope {
            account: Some(HUB.into()),
            region: Some("us-east-1".into()),
            member: false,
            hub: false
        }
    );
    let other = admitted(&event(MEMBER, "us-east-1"), &Accounts::Single).unwrap_err();
    assert_eq!(other.log, "skipped: event for another account or region");
    assert!(
        other.reason.contains("account 222233334444"),
        "{}",
        other.reason
    );
    let region = admitted(&event(HUB, "eu-west-1"), &Accounts::Single).unwrap_err();
    assert!(
        region.reason.contains("region eu-west-1"),
        "{}",
        region.reason
    );
    // An event that says nothing is the function's own.
    let unstamped = admitted(&event("", ""), &Accounts::Single).unwrap();
    assert_eq!(unstamped.account.as_deref(), Some(HUB));
}

#[test]
fn hub_mode_acts_in_listed_accounts_and_any_region_and_skips_the_rest() {
    let accounts = list(&[MEMBER]);
    let member = admitted(&event(MEMBER, "eu-west-1"), &accounts).unwrap();
    assert_eq!(
        member,
        Scope {
            account: Some(MEMBER.into()),
            region: Some("eu-west-1".into()),
            member: true,
            hub: true
        }
    );
    let own = admitted(&event(HUB, "us-east-1"), &accounts).unwrap();
    assert!(!own.member && own.hub);
    // The hub's roles are bound to its Region: elsewhere its account is a member too.
    let own_elsewhere = admitted(&event(HUB, "ap-southeast-2"), &accounts).unwrap();
    assert!(own_elsewhere.member);
    assert_eq!(own_elsewhere.account.as_deref(), Some(HUB));
    assert_eq!(own_elsewhere.region.as_deref(), Some("ap-southeast-2"));
    let stranger = admitted(&event("999999999999", "us-east-1"), &accounts).unwrap_err();
    assert_eq!(stranger.log, "skipped: account not in ACCOUNTS");
    assert!(stranger.reason.contains("999999999999"));
    let org = admitted(&event("999999999999", "us-east-1"), &Accounts::Org).unwrap();
    assert!(org.member);
}

#[test]
fn guardduty_findings_are_scoped_by_the_account_and_region_in_their_detail() {
    // A GuardDuty administrator (the hub) receives a member's finding stamped with its
    // own account: the resources are the member's.
    let f = finding(HUB, MEMBER, "eu-west-1");
    assert_eq!(stamped(&f), (MEMBER.to_string(), "eu-west-1".to_string()));
    assert!(admitted(&f, &list(&[MEMBER])).unwrap().member);
    // Single-account mode no longer acts at home on a member's finding.
    assert!(admitted(&f, &Accounts::Single).is_err());
    // Other sources keep the envelope's stamp whatever their detail says.
    let mut e = event(HUB, "us-east-1");
    e.detail = json!({"accountId": MEMBER});
    assert_eq!(stamped(&e).0, HUB);
}

fn assumed(valid_for: Duration) -> AssumeRoleOutput {
    let expiry = SystemTime::now() + valid_for;
    AssumeRoleOutput::builder()
        .credentials(
            aws_sdk_sts::types::Credentials::builder()
                .access_key_id("AKIA")
                .secret_access_key("secret")
                .session_token("token")
                .expiration(aws_sdk_sts::primitives::DateTime::from(expiry))
                .build()
                .unwrap(),
        )
        .build()
}

fn member(sts: Client) -> Member {
    Member {
        sts,
        account: MEMBER.into(),
        role_arn: format!("arn:aws:iam::{MEMBER}:role/ecs-autopilot-f"),
        session_name: "ecs-autopilot-f".into(),
        external_id: Some("ext".into()),
        cached: Mutex::new(None),
    }
}

#[tokio::test]
async fn credentials_are_assumed_once_and_reused_while_valid() {
    let rule = mock!(Client::assume_role)
        .match_requests(|r| {
            r.role_arn() == Some("arn:aws:iam::222233334444:role/ecs-autopilot-f")
                && r.role_session_name() == Some("ecs-autopilot-f")
                && r.external_id() == Some("ext")
        })
        .then_output(|| assumed(Duration::from_secs(3600)));
    let m = member(mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]));
    for _ in 0..3 {
        assert_eq!(m.credentials().await.unwrap().access_key_id(), "AKIA");
    }
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn credentials_about_to_expire_are_renewed() {
    let rule = mock!(Client::assume_role).then_output(|| assumed(Duration::from_secs(120)));
    let m = member(mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]));
    m.credentials().await.unwrap();
    m.credentials().await.unwrap();
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn a_missing_role_fails_clearly_and_is_not_cached() {
    let denied = mock!(Client::assume_role).then_error(|| {
        AssumeRoleError::generic(aws_error(
            "AccessDenied",
            "not authorized to perform: sts:AssumeRole",
        ))
    });
    let granted = mock!(Client::assume_role).then_output(|| assumed(Duration::from_secs(3600)));
    let m = member(mock_client!(
        aws_sdk_sts,
        RuleMode::Sequential,
        [&denied, &granted]
    ));
    let e = m.credentials().await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(
            "cannot assume arn:aws:iam::222233334444:role/ecs-autopilot-f for account 222233334444"
        ),
        "{text}"
    );
    assert_eq!(e.aws_code(), Some("AccessDenied"));
    assert!(!e.is_retryable());
    // The role deployed since (a new account's StackSet instance): the next event works.
    assert!(m.credentials().await.is_ok());
}
