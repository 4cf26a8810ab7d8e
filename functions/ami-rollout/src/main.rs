//! Composition root: configuration and AWS clients once per cold start, then the loop.

use ami_rollout::config::Config;
use ami_rollout::{handle, Deps};
use shared::aws::Aws;
use shared::config::Env;
use shared::events::ssm::sns_records_to_envelopes;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::init_tracing();
    let config = Config::from_env(&Env::process())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let common = config.common.clone();
    let aws = Aws::load().await;
    // The ECS-optimized AMI release notification arrives SNS-shaped.
    shared::runtime::serve(
        aws,
        &common,
        move |aws| Deps::new(aws, config.clone()),
        sns_records_to_envelopes,
        |deps, event| async move { handle(&deps, event).await },
    )
    .await
}
