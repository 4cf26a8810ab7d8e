//! The HTTPS client every SDK client of a process shares, built so a cold start pays for
//! its trust roots once, when the first request needs them.
//!
//! Measured (`make bench`, AUTOPILOT_INIT_TIMING): with the SDK's default, every SDK
//! client gets its own HTTP client, and each builds a throwaway TLS connector when it is
//! constructed ("so that native certs load at client initialization time") and its real
//! one on its first request: the trust store was parsed twice per client, eight to twelve
//! times per cold start, and the system certificate directory scanned once. Here:
//! - one HTTP client for all SDK clients (one connector per timeout settings, one
//!   connection pool), the same connector the SDK's default builds (rustls with aws-lc,
//!   proxy settings from the environment);
//! - no throwaway connector at construction: the trust store is parsed once, on the first
//!   request, which needs it;
//! - [`prefer_ca_bundle`]: the system's CA bundle file is read instead of the bundle plus
//!   every file of the certificate directory (the directory holds the same roots).
//!
//! Endpoints (`AWS_ENDPOINT_URL…`), credentials, retries and timeouts are untouched: they
//! are the SDK configuration's, not the HTTP client's.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;

/// The SDK's default HTTPS client without its eager connector.
#[derive(Debug)]
struct OnFirstRequest(SharedHttpClient);

impl HttpClient for OnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps the trait's default (nothing): the inner client's
    // builds and drops a TLS connector for every SDK client constructed.

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// One HTTPS client for every SDK client built from the same SDK configuration. The
/// connector is what aws-smithy-runtime's `default_https_client` builds.
pub fn shared_client() -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    OnFirstRequest(inner).into_shared()
}

/// Where the system's roots are read from: unless `SSL_CERT_FILE` or `SSL_CERT_DIR` is
/// set (then those, as before), the first CA bundle file OpenSSL would use. `None` leaves
/// the search to rustls-native-certs (a system with a certificate directory only).
pub fn ca_bundle(
    cert_file: Option<&std::ffi::OsStr>,
    cert_dir: Option<&std::ffi::OsStr>,
    probe: impl FnOnce() -> Option<std::path::PathBuf>,
) -> Option<std::path::PathBuf> {
    let set = |v: Option<&std::ffi::OsStr>| v.is_some_and(|v| !v.is_empty());
    if set(cert_file) || set(cert_dir) {
        return None;
    }
    probe()
}

/// Points `SSL_CERT_FILE` at the system's CA bundle (see [`ca_bundle`]). Called once at
/// cold start, before any thread or client exists.
pub fn prefer_ca_bundle() {
    let file = std::env::var_os("SSL_CERT_FILE");
    let dir = std::env::var_os("SSL_CERT_DIR");
    if let Some(bundle) = ca_bundle(file.as_deref(), dir.as_deref(), || {
        openssl_probe::probe().cert_file
    }) {
        // Edition 2021: set_var is safe; it runs before the SDK or any thread reads the
        // environment (the composition root's first awaited step).
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::path::PathBuf;

    #[test]
    fn the_bundle_file_is_preferred_only_when_nothing_is_configured() {
        let probed = || Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
        assert_eq!(ca_bundle(None, None, probed), probed());
        assert_eq!(ca_bundle(Some(OsStr::new("")), None, probed), probed());
        assert_eq!(
            ca_bundle(Some(OsStr::new("/custom.pem")), None, probed),
            None
        );
        assert_eq!(
            ca_bundle(None, Some(OsStr::new("/etc/custom")), probed),
            None
        );
        assert_eq!(ca_bundle(None, None, || None), None);
    }

    #[tokio::test]
    async fn every_sdk_client_shares_the_one_http_client() {
        let config = aws_config::SdkConfig::builder()
            .http_client(shared_client())
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let ecs = aws_sdk_ecs::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let a = ecs.config().http_client().expect("set");
        let b = sqs.config().http_client().expect("set");
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert!(format!("{a:?}").contains("OnFirstRequest"));
    }
}
