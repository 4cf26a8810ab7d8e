//! Composition root: configuration and AWS clients once per cold start, then the loop.

use ami_rollout::config::Config;
use ami_rollout::{handle, Deps};
use shared::events::ssm::sns_records_to_envelopes;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::run(
        Config::from_env,
        |config| &config.common,
        Deps::new,
        // The ECS-optimized AMI release notification arrives SNS-shaped.
        sns_records_to_envelopes,
        |deps, event| async move { handle(&deps, event).await },
    )
    .await
}
