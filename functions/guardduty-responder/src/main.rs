//! Composition root: configuration and AWS clients once per cold start, then the loop.

use guardduty_responder::config::Config;
use guardduty_responder::{handle, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::run(
        Config::from_env,
        |config| &config.common,
        Deps::new,
        shared::runtime::untranslated,
        |deps, event| async move { handle(&deps, event).await },
    )
    .await
}
