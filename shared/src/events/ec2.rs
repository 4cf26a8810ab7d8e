//! EC2 events that warn an instance is about to go away.

use serde::Deserialize;

use super::Envelope;
use crate::error::Error;

pub const SPOT_INTERRUPTION: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";

/// A spot interruption warning: the instance is reclaimed about two minutes later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceWarning {
    pub instance_id: String,
    /// `terminate`, `stop` or `hibernate` for spot; empty for rebalance recommendations.
    pub action: String,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "instance-id")]
    instance_id: String,
    #[serde(rename = "instance-action", default)]
    instance_action: String,
}

impl InstanceWarning {
    pub fn from_envelope(event: &Envelope) -> Result<Self, Error> {
        let d: Detail = event.detail_as()?;
        if !d.instance_id.starts_with("i-") {
            return Err(Error::BadEvent(format!(
                "instance-id {:?} is not an instance id",
                d.instance_id
            )));
        }
        Ok(InstanceWarning {
            instance_id: d.instance_id,
            action: d.instance_action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_fixture_parses() {
        let e = crate::testing::envelope("ec2-spot-interruption.json");
        let w = InstanceWarning::from_envelope(&e).unwrap();
        assert_eq!(w.instance_id, "i-1234567890abcdef0");
        assert_eq!(w.action, "terminate");
    }
}
