//! Composition root: configuration and AWS clients once per cold start, then the loop.

use std::sync::Arc;

use shared::aws::{autoscaling::AutoScaling, ecs::Ecs, sdk_config, sns::Topic, sqs::Queue};
use shared::config::Env;
use shared::notify::Reporter;
use task_retirement::config::{Config, FUNCTION};
use task_retirement::{handle, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::init_tracing();
    let config = Config::from_env(&Env::process())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let aws = sdk_config().await;
    let deps = Arc::new(Deps {
        ecs: Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        asg: AutoScaling::new(aws_sdk_autoscaling::Client::new(&aws)),
        queue: Queue::new(aws_sdk_sqs::Client::new(&aws), &config.queue_url),
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
    shared::runtime::serve(move |event| {
        let deps = deps.clone();
        Box::pin(async move { handle(&deps, event).await })
    })
    .await
}
