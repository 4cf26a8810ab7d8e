//! EC2, one file per resource: instances (tags, scheduled events, network), network
//! interfaces, EBS snapshots, launch templates and images.

mod images;
mod instances;
mod launch_templates;
mod network_interfaces;
mod snapshots;

pub use images::Image;
pub use instances::{HostNetwork, ScheduledEvent};
pub use launch_templates::{ImageRef, TemplateVersion};
pub use network_interfaces::Interface;

use aws_sdk_ec2::types::Tag;
use aws_sdk_ec2::Client;

#[derive(Clone, Debug)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    pub fn new(client: Client) -> Self {
        Ec2 { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// `(key, value)` pairs as the SDK's tags.
fn sdk_tags(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}
