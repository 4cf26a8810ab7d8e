//! The physical limit `make bench` compares cold starts with: the same runtime crate, the
//! same tokio flavour and the same release profile as the functions, and nothing else (no
//! tracing, configuration or AWS clients). It answers every event with `{}`.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<Value, lambda_runtime::Error>(Value::Object(Default::default()))
    }))
    .await
}
