//! Thin adapters over the AWS SDK clients: each turns SDK shapes into the small domain
//! types the functions decide on, and SDK errors into [`crate::Error`]. No decisions here.
//! One module per service, one file per resource of it; SDK-mock tests sit at the end of
//! the file of the adapter they pin.

/// A state AWS reports as a string, as a small enum: the values AWS documents today are
/// variants, anything it adds later is kept as `Other` with AWS's spelling. Displayed and
/// serialized exactly as AWS spells it, so logs and plans read as they did with strings.
macro_rules! aws_state {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value AWS added after this code was written (or none: empty).
            Other(String),
        }

        impl $name {
            /// As AWS spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod https;
pub mod organizations;
pub mod sns;
pub mod sqs;
pub mod ssm;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK configuration once per cold start. Endpoints follow the standard
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so the same binary talks
/// to AWS or to an emulator. Throttles and server faults are retried with exponential
/// backoff and jitter (the SDK's standard mode) before an error reaches a handler.
///
/// Every SDK client shares one HTTPS client whose trust roots load on the first request
/// (see [`https`]).
pub async fn sdk_config() -> SdkConfig {
    sdk_defaults().load().await
}

/// The loader [`sdk_config`] uses (retries, timeouts, the shared HTTPS client), for a
/// caller that sets more before loading (the CLI's `--region` and `--profile`).
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    https::prefer_ca_bundle();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https::shared_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(40))
                .build(),
        )
}

/// The ARN partition of a Region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Splits `items` into chunks an API accepts at once (DescribeTasks takes 100, ...).
pub(crate) fn batches<T: Clone>(items: &[T], size: usize) -> impl Iterator<Item = Vec<T>> + '_ {
    items.chunks(size).map(<[T]>::to_vec)
}

/// The one reading of a resource's tags (any service's `(key, value)` pairs) as a map:
/// a tag without a key is left out, one without a value reads as empty.
pub(crate) fn tag_map<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|(key, value)| Some((key?.to_string(), value.unwrap_or_default().to_string())))
        .collect()
}

/// The fleet's adapters every function acts through, and where it reports.
pub struct Clients {
    pub ecs: ecs::Ecs,
    pub asg: autoscaling::AutoScaling,
    pub ec2: ec2::Ec2,
    pub reporter: crate::notify::Reporter,
}

/// The adapters a composition root builds. The fleet's adapters (ECS, Auto Scaling, EC2,
/// SSM) use the configuration of the account and Region being acted on; the hub's own
/// resources (the topic, the queues, STS, Organizations) always use the function's own
/// configuration. In single-account mode the two are the same.
pub struct Aws {
    fleet: SdkConfig,
    own: SdkConfig,
}

impl Aws {
    pub async fn load() -> Self {
        crate::coldstart::mark("config");
        let aws = Aws::from_sdk_config(sdk_config().await);
        crate::coldstart::mark("aws_config");
        aws
    }

    /// The adapters over an SDK configuration the caller loaded itself.
    pub fn from_sdk_config(config: SdkConfig) -> Self {
        Aws {
            fleet: config.clone(),
            own: config,
        }
    }

    /// The same adapters for `region`, with `credentials` for the fleet's adapters when
    /// they belong to another account (see `tenancy`).
    pub fn scoped(
        &self,
        region: &str,
        credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    ) -> Self {
        let mut fleet = self
            .own
            .to_builder()
            .region(aws_config::Region::new(region.to_string()));
        if let Some(c) = credentials {
            fleet = fleet.credentials_provider(c);
        }
        Aws {
            fleet: fleet.build(),
            own: self.own.clone(),
        }
    }

    /// The function's own Region (empty when unknown).
    pub fn region(&self) -> String {
        self.own
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default()
    }

    /// The ARN partition of the function's own Region.
    pub fn partition(&self) -> String {
        partition_of(&self.region()).to_string()
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.own)
    }

    pub fn organizations(&self) -> organizations::Organizations {
        organizations::Organizations::new(aws_sdk_organizations::Client::new(&self.own))
    }

    pub fn ecs(&self) -> ecs::Ecs {
        ecs::Ecs::new(aws_sdk_ecs::Client::new(&self.fleet))
    }

    pub fn autoscaling(&self) -> autoscaling::AutoScaling {
        autoscaling::AutoScaling::new(aws_sdk_autoscaling::Client::new(&self.fleet))
    }

    pub fn ec2(&self) -> ec2::Ec2 {
        ec2::Ec2::new(aws_sdk_ec2::Client::new(&self.fleet))
    }

    pub fn ssm(&self) -> ssm::Ssm {
        ssm::Ssm::new(aws_sdk_ssm::Client::new(&self.fleet))
    }

    pub fn queue(&self, url: &str) -> sqs::Queue {
        sqs::Queue::new(aws_sdk_sqs::Client::new(&self.own), url)
    }

    /// The adapters every function acts through, and its reporter.
    pub fn clients(&self, common: &crate::config::Common) -> Clients {
        Clients {
            ecs: self.ecs(),
            asg: self.autoscaling(),
            ec2: self.ec2(),
            reporter: self.reporter(common),
        }
    }

    /// The notification reporter for `common.function`, publishing to its topic.
    pub fn reporter(&self, common: &crate::config::Common) -> crate::notify::Reporter {
        let topic = sns::Topic::new(
            aws_sdk_sns::Client::new(&self.own),
            &common.notify_topic_arn,
        );
        crate::notify::Reporter::new(topic, common.function, common.dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_without_a_key_are_left_out_and_missing_values_read_as_empty() {
        let tags = tag_map([
            (Some("team"), Some("web")),
            (None, Some("orphan")),
            (Some("flag"), None),
        ]);
        assert_eq!(
            tags,
            BTreeMap::from([
                ("flag".into(), String::new()),
                ("team".into(), "web".into())
            ])
        );
    }

    #[test]
    fn partitions_follow_the_region_prefix() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
