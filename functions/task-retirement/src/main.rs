//! Composition root: configuration and AWS clients once per cold start, then the loop.

use shared::aws::Aws;
use shared::config::Env;
use task_retirement::config::Config;
use task_retirement::{handle, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::init_tracing();
    let config = Config::from_env(&Env::process())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let common = config.common.clone();
    let aws = Aws::load().await;
    shared::runtime::serve(
        aws,
        &common,
        move |aws| Deps::new(aws, config.clone()),
        shared::runtime::untranslated,
        |deps, event| async move { handle(&deps, event).await },
    )
    .await
}
