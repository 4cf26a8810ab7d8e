//! Images (AMIs): what an image can run on and which OS family it is.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use serde::Serialize;

use super::Ec2;
use crate::error::{aws, Result};

/// Values per `image-id` filter in one DescribeImages call (EC2 accepts up to 200).
const IDS_PER_CALL: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub image_id: String,
    /// `x86_64`, `arm64`, `i386`, `x86_64_mac`, `arm64_mac`.
    pub architecture: String,
    /// `windows` for Windows AMIs, empty otherwise (EC2's `Platform`).
    pub platform: String,
    /// `Linux/UNIX`, `Windows`, `Red Hat Enterprise Linux`, ... (billing platform).
    pub platform_details: String,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: String,
    pub name: String,
    pub description: String,
    /// `amazon` for AMIs AWS publishes.
    pub owner_alias: String,
}

impl Ec2 {
    /// The images of `ids` that EC2 still describes (deprecated and disabled ones
    /// included); an id missing from the answer is unknown (deregistered, or not
    /// shared with this account). Filtered by `image-id` rather than `ImageIds`, so
    /// one unknown id does not fail the whole call.
    pub async fn images(&self, ids: &[String]) -> Result<BTreeMap<String, Image>> {
        let mut found = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let out = self
                .client
                .describe_images()
                .filters(
                    Filter::builder()
                        .name("image-id")
                        .set_values(Some(chunk.to_vec()))
                        .build(),
                )
                .include_deprecated(true)
                .include_disabled(true)
                .send()
                .await
                .map_err(|e| aws("ec2", "DescribeImages", e))?;
            for i in out.images() {
                let Some(id) = i.image_id() else { continue };
                found.insert(
                    id.to_string(),
                    Image {
                        image_id: id.to_string(),
                        architecture: i
                            .architecture()
                            .map(|a| a.as_str().to_string())
                            .unwrap_or_default(),
                        platform: i
                            .platform()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                        platform_details: i.platform_details().unwrap_or_default().to_string(),
                        virtualization_type: i
                            .virtualization_type()
                            .map(|v| v.as_str().to_string())
                            .unwrap_or_default(),
                        name: i.name().unwrap_or_default().to_string(),
                        description: i.description().unwrap_or_default().to_string(),
                        owner_alias: i.image_owner_alias().unwrap_or_default().to_string(),
                    },
                );
            }
        }
        Ok(found)
    }
}
