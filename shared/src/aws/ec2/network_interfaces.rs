//! Network interfaces: which security groups one is in, and moving it to others.

use super::Ec2;
use crate::error::{aws, Result};

/// A network interface and the security groups it is in now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub id: String,
    pub groups: Vec<String>,
}

impl Ec2 {
    /// Replaces the security groups of a network interface.
    pub async fn set_network_interface_groups(
        &self,
        network_interface_id: &str,
        groups: &[String],
    ) -> Result<()> {
        self.client
            .modify_network_interface_attribute()
            .network_interface_id(network_interface_id)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| aws("ec2", "ModifyNetworkInterfaceAttribute", e))?;
        Ok(())
    }
}
