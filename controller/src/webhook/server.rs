//! The webhook's HTTPS server: every POST is an AdmissionReview, answered from the latest
//! snapshot (the server never reaches into the controller's loop). The certificate can be
//! replaced while serving (renewal): new connections get the new one.
use super::certs::Bundle;
use axum::body::Bytes;
use ferrolb_cluster::Snapshot;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake, and how many handshakes may be
/// under way at once: a client that stalls holds one slot for a few seconds, never the others.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKES: usize = 64;

/// A TLS acceptor for a certificate and key in PEM.
pub fn acceptor(bundle: &Bundle) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(bundle.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the webhook certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(bundle.key_pem.as_bytes())
        .map_err(|e| format!("the webhook key: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("the webhook certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// TLS connections, handshaken in their own tasks with the current certificate.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    /// The accepting task, stopped with the listener.
    _accepting: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: watch::Receiver<TlsAcceptor>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(HANDSHAKES);
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "webhook: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "webhook: too many handshakes under way; connection dropped");
                    continue;
                };
                let acceptor = acceptor.borrow().clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "webhook: TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "webhook: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            _accepting: AbortOnDrop(accepting),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (only with the listener): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves AdmissionReviews on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    acceptor: watch::Receiver<TlsAcceptor>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    namespace: String,
) -> std::io::Result<()> {
    let namespace = Arc::new(namespace);
    let router = axum::Router::new().fallback(axum::routing::post(move |body: Bytes| {
        let snapshot = snapshots.borrow().clone();
        let namespace = namespace.clone();
        async move {
            let review = super::review(&body, &snapshot, &namespace);
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                review.to_string(),
            )
        }
    }));
    axum::serve(TlsListener::new(listener, acceptor)?, router).await
}
