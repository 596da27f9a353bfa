//! The client of callqa's own outbound requests (alert webhooks, an
//! embeddings endpoint): hyper-util's pooled client over rustls with the
//! aws-lc-rs provider and the system's roots, the TLS stack the AWS SDK
//! already builds.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client whose connections time out after `connect_timeout`.
/// `https_target` names what will be reached over TLS (`webhook "x"`), for
/// the error when the system's roots cannot be read; `None` when every
/// target is plain HTTP (a sidecar, loopback), which needs no roots.
pub fn http_client(connect_timeout: Duration, https_target: Option<&str>) -> anyhow::Result<HttpClient> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
        Ok(b) => b,
        Err(err) => {
            if let Some(target) = https_target {
                return Err(err).with_context(|| {
                    format!(
                        "{target} is https, but this system's CA certificates cannot be read (install \
                         ca-certificates, or set SSL_CERT_FILE)"
                    )
                });
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector))
}
