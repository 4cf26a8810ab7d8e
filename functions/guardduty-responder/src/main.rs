//! Composition root: configuration and AWS clients once per cold start, then the loop.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::run::<guardduty_responder::config::Config>().await
}
