//! The webhook's HTTPS server: every POST is an AdmissionReview, answered from the latest
//! snapshot (the server never reaches into the controller's loop). The certificate can be
//! replaced while serving (renewal): new connections get the new one.
use super::certs::Bundle;
use axum::body::Bytes;
use ferrolb_cluster::Snapshot;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake, how long a connection may stay
/// silent, and how many connections may be open at once (handshaking or not): a client that
/// stalls holds one slot for a few seconds, and waiting clients get the next free one.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const LIFETIME: Duration = Duration::from_secs(600);
const CONNECTIONS: usize = 256;

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

/// A TLS connection that holds its slot until it closes. It ends when it has made no
/// progress for [`IDLE_TIMEOUT`] (reading, or writing to a client that stopped reading),
/// and after [`LIFETIME`] whatever it does: no client keeps a slot for long.
struct Connection {
    tls: TlsStream<TcpStream>,
    idle: Pin<Box<tokio::time::Sleep>>,
    end: Pin<Box<tokio::time::Sleep>>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Connection {
    fn new(tls: TlsStream<TcpStream>, slot: tokio::sync::OwnedSemaphorePermit) -> Connection {
        Connection {
            tls,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
            end: Box::pin(tokio::time::sleep(LIFETIME)),
            _slot: slot,
        }
    }

    fn active(&mut self) {
        self.idle
            .as_mut()
            .reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
    }

    /// While the stream is not ready: whether the connection's time is up.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle.as_mut().poll(cx).is_ready() || self.end.as_mut().poll(cx).is_ready()
    }

    /// A stream result: progress resets the idle timer; no progress past the timers ends it.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.active();
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => {
                Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.tls).poll_read(cx, buf);
        self.progress(cx, poll)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.tls).poll_write(cx, buf);
        self.progress(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.tls).poll_flush(cx);
        self.progress(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

/// TLS connections, handshaken in their own tasks with the current certificate.
struct TlsListener {
    ready: mpsc::Receiver<(Connection, SocketAddr)>,
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
        let (sender, ready) = mpsc::channel(16);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
        let accepting = tokio::spawn(async move {
            loop {
                // A free slot first: while every slot is taken, new clients wait in the
                // kernel's backlog rather than being turned away.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "webhook: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.borrow().clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let connection = Connection::new(tls, slot);
                            let _ = sender.send((connection, peer)).await;
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
    type Io = Connection;
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
