//! Auto Scaling, one file per resource: groups and their launch setup, lifecycle
//! actions and states, instance health, and instance refreshes.

mod groups;
mod health;
mod launch;
mod lifecycle;
mod refresh;

pub use groups::{Group, GroupDetails, GroupInstance, CLUSTER_TAG};
pub use health::HealthOutcome;
pub use launch::{LaunchSource, LaunchTemplateRef, Override};
pub use lifecycle::{HookOutcome, HookResult, LifecycleState};
pub use refresh::{InstanceRefresh, RefreshRequest, RefreshSettings, RefreshStart, RefreshStatus};

use aws_sdk_autoscaling::Client;

#[derive(Clone, Debug)]
pub struct AutoScaling {
    client: Client,
}

impl AutoScaling {
    pub fn new(client: Client) -> Self {
        AutoScaling { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}
