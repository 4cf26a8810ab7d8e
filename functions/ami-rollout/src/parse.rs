//! Turns an event into what ami-rollout should look at. Every trigger is one of three
//! intents: check every managed group, check the groups following one parameter, or
//! report how an instance refresh ended.

use shared::events::autoscaling::refresh::{self, RefreshEvent};
use shared::events::ssm::{self, AmiRelease, ParameterChange};
use shared::events::Envelope;
use shared::Error;

pub const SCHEDULED_EVENT: &str = "Scheduled Event";
/// `detail.check` of the window guard's scheduled event (template.yaml's input
/// transformer on `AmiRolloutWindowGuardRule`).
pub const WINDOW_CHECK: &str = "window";

#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// A schedule or an ECS-optimized AMI release: look at every managed group.
    CheckAll { kind: &'static str, why: String },
    /// A parameter may name a new AMI: look at the groups that follow it.
    CheckParameter(ParameterChange),
    /// An instance refresh ended (or rolled back): say how.
    RefreshEnded(RefreshEvent),
    /// The window guard's schedule (a Scheduled Event with detail `{"check": "window"}`):
    /// halt ami-rollout's own refreshes when the window is about to close, resume halted
    /// ones when it is open again.
    WindowGuard,
    /// Nothing to do; logged only.
    Ignore(String),
}

impl Intent {
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::CheckAll { kind, .. } => kind,
            Intent::CheckParameter(_) => "parameter-change",
            Intent::RefreshEnded(_) => "refresh-outcome",
            Intent::WindowGuard => "window-guard",
            Intent::Ignore(_) => "ignored",
        }
    }
}

pub fn intent(event: &Envelope) -> Result<Intent, Error> {
    match event.detail_type.as_str() {
        SCHEDULED_EVENT
            if event.detail.get("check").and_then(|c| c.as_str()) == Some(WINDOW_CHECK) =>
        {
            Ok(Intent::WindowGuard)
        }
        SCHEDULED_EVENT => Ok(Intent::CheckAll {
            kind: "scheduled-check",
            why: "scheduled check".into(),
        }),
        ssm::ECS_AMI_RELEASE => {
            let release = AmiRelease::from_envelope(event)?;
            let why = if release.releases.is_empty() {
                "AWS announced new ECS-optimized AMIs".to_string()
            } else {
                format!(
                    "AWS announced ECS-optimized AMI release {}",
                    release.releases.join(", ")
                )
            };
            Ok(Intent::CheckAll {
                kind: "ami-release",
                why,
            })
        }
        ssm::PARAMETER_CHANGE => {
            let change = ParameterChange::from_envelope(event)?;
            if change.may_change_value() {
                Ok(Intent::CheckParameter(change))
            } else {
                Ok(Intent::Ignore(format!(
                    "parameter {} {}: no new value to roll out (a group still following it is reported by the next scheduled check)",
                    change.name, change.operation
                )))
            }
        }
        dt if refresh::ALL.contains(&dt) => {
            let r = RefreshEvent::from_envelope(event)?;
            if r.phase.is_final() {
                Ok(Intent::RefreshEnded(r))
            } else {
                Ok(Intent::Ignore(format!(
                    "instance refresh {} of {} is still running ({dt})",
                    r.refresh_id, r.group
                )))
            }
        }
        other => Err(Error::BadEvent(format!(
            "ami-rollout does not handle {other:?} events from {:?}",
            event.source
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::autoscaling::refresh::Phase;
    use shared::testing::envelope as fixture;

    #[test]
    fn the_window_guards_schedule_is_its_own_intent() {
        let mut e = fixture("ami-scheduled-event.json");
        e.detail = serde_json::json!({"check": "window"});
        assert_eq!(intent(&e).unwrap(), Intent::WindowGuard);
    }

    #[test]
    fn a_schedule_checks_every_group() {
        assert!(matches!(
            intent(&fixture("ami-scheduled-event.json")).unwrap(),
            Intent::CheckAll {
                kind: "scheduled-check",
                ..
            }
        ));
    }

    #[test]
    fn an_ami_release_notification_checks_every_group_and_names_the_release() {
        let payload = shared::testing::fixture("ami-ecs-optimized-sns.json");
        let e = shared::events::ssm::sns_records_to_envelopes(&payload)
            .unwrap()
            .unwrap()
            .remove(0);
        let Intent::CheckAll { kind, why } = intent(&e).unwrap() else {
            panic!()
        };
        assert_eq!(kind, "ami-release");
        assert!(why.contains("2023.0.20240702"));
    }

    #[test]
    fn parameter_updates_check_that_parameter_and_deletes_are_ignored() {
        let e = fixture("ami-parameter-store-change.json");
        assert!(
            matches!(intent(&e).unwrap(), Intent::CheckParameter(c) if c.name == "/platform/ecs/ami")
        );
        let mut deleted = e.clone();
        deleted.detail["operation"] = "Delete".into();
        assert!(matches!(intent(&deleted).unwrap(), Intent::Ignore(_)));
    }

    #[test]
    fn only_final_refresh_events_are_reported() {
        let Intent::RefreshEnded(r) = intent(&fixture("ami-instance-refresh-failed.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.phase, Phase::Failed);
        assert!(matches!(
            intent(&fixture("ami-instance-refresh-checkpoint.json")).unwrap(),
            Intent::Ignore(_)
        ));
    }

    #[test]
    fn other_events_are_bad_events() {
        let mut e = fixture("ami-scheduled-event.json");
        e.detail_type = "EC2 Instance State-change Notification".into();
        assert!(matches!(intent(&e), Err(Error::BadEvent(_))));
    }

    #[test]
    fn any_payload_is_an_intent_or_a_bad_event_never_a_panic() {
        use shared::testing::strategies;
        strategies::check("ami-rollout parse::intent", strategies::payloads(), |v| {
            let envelopes = match shared::events::ssm::sns_records_to_envelopes(&v) {
                Some(Ok(envelopes)) => envelopes,
                Some(Err(_)) => vec![],
                None => Envelope::parse(v).into_iter().collect(),
            };
            for e in envelopes {
                strategies::assert_ok_or_bad_event("intent", &intent(&e));
            }
        });
    }
}
