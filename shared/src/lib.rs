//! The library every ecs-autopilot function uses: configuration, typed events, AWS
//! adapters, notifications, metrics and the Lambda entry. Nothing here knows which
//! function uses it.

pub mod aws;
pub mod coldstart;
pub mod config;
pub mod error;
pub mod events;
pub mod exec;
pub mod metrics;
pub mod notify;
pub mod runtime;
pub mod tenancy;
/// Test support for every crate's tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Result};
pub mod window;
