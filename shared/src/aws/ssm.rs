//! SSM Parameter Store: the parameters that name the AMI a group should run.

use std::collections::BTreeMap;

use aws_sdk_ssm::Client;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::batches;
use crate::error::{aws, Result};

/// GetParameters accepts at most ten names per call.
const GET_PARAMETERS_MAX: usize = 10;

/// The AMI a parameter names, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmiParameter {
    pub name: String,
    pub image_id: String,
    pub version: i64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// What a batch of parameter reads found: the AMIs, and why the others gave none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmiParameters {
    pub found: BTreeMap<String, AmiParameter>,
    /// Name → reason (missing, no access, value is not an AMI id).
    pub unusable: BTreeMap<String, String>,
}

/// The AMI id in a parameter value: a plain `ami-...` id, or the JSON the ECS-optimized
/// `.../recommended` parameter holds (`{"image_id": "ami-...", ...}`).
pub fn image_id_of(value: &str) -> Option<String> {
    let v = value.trim();
    if is_ami_id(v) {
        return Some(v.to_string());
    }
    serde_json::from_str::<Value>(v)
        .ok()?
        .get("image_id")?
        .as_str()
        .map(str::trim)
        .filter(|id| is_ami_id(id))
        .map(str::to_string)
}

pub fn is_ami_id(text: &str) -> bool {
    text.strip_prefix("ami-")
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

#[derive(Clone, Debug)]
pub struct Ssm {
    client: Client,
}

impl Ssm {
    pub fn new(client: Client) -> Self {
        Ssm { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads the AMI each parameter names, ten names per call.
    pub async fn ami_parameters(&self, names: &[String]) -> Result<AmiParameters> {
        let mut out = AmiParameters::default();
        for batch in batches(names, GET_PARAMETERS_MAX) {
            let resp = self
                .client
                .get_parameters()
                .set_names(Some(batch))
                .send()
                .await
                .map_err(|e| aws("ssm", "GetParameters", e))?;
            for name in resp.invalid_parameters() {
                out.unusable.insert(
                    name.clone(),
                    "parameter not found (or not readable by this function)".into(),
                );
            }
            for p in resp.parameters() {
                let name = p.name().unwrap_or_default().to_string();
                let value = p.value().unwrap_or_default();
                match image_id_of(value) {
                    Some(image_id) => {
                        out.found.insert(
                            name.clone(),
                            AmiParameter {
                                name,
                                image_id,
                                version: p.version(),
                                last_modified: p.last_modified_date().and_then(|d| {
                                    DateTime::from_timestamp(d.secs(), d.subsec_nanos())
                                }),
                            },
                        );
                    }
                    None => {
                        let shown: String = value.chars().take(80).collect();
                        out.unusable.insert(
                            name,
                            format!(
                                "value {shown:?} is neither an AMI id nor JSON with an image_id"
                            ),
                        );
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::operation::get_parameters::GetParametersOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[test]
    fn plain_ids_and_recommended_json_both_name_an_ami() {
        assert_eq!(image_id_of(" ami-0abc123 ").as_deref(), Some("ami-0abc123"));
        let json = r#"{"ecs_agent_version":"1.84.0","image_id":"ami-0def456","image_name":"al2023-ami-ecs-hvm"}"#;
        assert_eq!(image_id_of(json).as_deref(), Some("ami-0def456"));
        assert_eq!(image_id_of("resolve:ssm:/x"), None);
        assert_eq!(image_id_of(r#"{"image_id":"not-an-ami"}"#), None);
        assert_eq!(image_id_of("ami-"), None);
    }

    #[tokio::test]
    async fn names_are_read_ten_at_a_time_and_bad_values_are_reported() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = calls.clone();
        let rule = mock!(aws_sdk_ssm::Client::get_parameters)
            .match_requests(move |r| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r.names().len() <= 10
            })
            .then_output(|| {
                GetParametersOutput::builder()
                    .parameters(
                        Parameter::builder()
                            .name("/p/json")
                            .value(r#"{"image_id":"ami-0aa"}"#)
                            .version(3)
                            .build(),
                    )
                    .parameters(Parameter::builder().name("/p/bad").value("latest").build())
                    .invalid_parameters("/p/missing")
                    .build()
            });
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule]);
        let names: Vec<String> = (0..25).map(|n| format!("/p/{n}")).collect();
        let out = Ssm::new(client).ami_parameters(&names).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(out.found["/p/json"].image_id, "ami-0aa");
        assert_eq!(out.found["/p/json"].version, 3);
        assert!(out.unusable["/p/bad"].contains("latest"));
        assert!(out.unusable.contains_key("/p/missing"));
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameters).then_error(|| {
            aws_sdk_ssm::operation::get_parameters::GetParametersError::generic(
                crate::testing::aws_error("ThrottlingException", "Rate exceeded"),
            )
        });
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule]);
        let e = Ssm::new(client)
            .ami_parameters(&["/p".to_string()])
            .await
            .unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.aws_code(), Some("ThrottlingException"));
    }
}
