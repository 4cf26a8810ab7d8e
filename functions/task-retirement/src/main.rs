//! Composition root: configuration and AWS clients once per cold start, then the loop.

use std::sync::Arc;

use shared::aws::Aws;
use shared::config::Env;
use task_retirement::config::Config;
use task_retirement::{handle, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::init_tracing();
    let config = Config::from_env(&Env::process())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let aws = Aws::load().await;
    let deps = Arc::new(Deps {
        ecs: aws.ecs(),
        asg: aws.autoscaling(),
        ec2: aws.ec2(),
        queue: aws.queue(&config.queue_url),
        reporter: aws.reporter(&config.common),
        config,
    });
    shared::runtime::serve(move |event| {
        let deps = deps.clone();
        Box::pin(async move { handle(&deps, event).await })
    })
    .await
}
