//! Composition root: configuration and AWS clients once per cold start, then the loop.

use std::sync::Arc;

use ami_rollout::config::{Config, FUNCTION};
use ami_rollout::{handle, Deps};
use shared::aws::{autoscaling::AutoScaling, ec2::Ec2, ecs::Ecs, sdk_config, sns::Topic, ssm::Ssm};
use shared::config::Env;
use shared::events::ssm::sns_records_to_envelopes;
use shared::notify::Reporter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::init_tracing();
    let config = Config::from_env(&Env::process())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let aws = sdk_config().await;
    let deps = Arc::new(Deps {
        ecs: Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        asg: AutoScaling::new(aws_sdk_autoscaling::Client::new(&aws)),
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&aws)),
        ssm: Ssm::new(aws_sdk_ssm::Client::new(&aws)),
        reporter: Reporter::new(
            Topic::new(
                aws_sdk_sns::Client::new(&aws),
                &config.common.notify_topic_arn,
            ),
            FUNCTION,
            config.common.dry_run,
        ),
        config,
    });
    // The ECS-optimized AMI release notification arrives SNS-shaped.
    shared::runtime::serve_translating(sns_records_to_envelopes, move |event| {
        let deps = deps.clone();
        Box::pin(async move { handle(&deps, event).await })
    })
    .await
}
