//! The Speaker service over the published snapshots: List answers with the current one,
//! Watch sends it at once and then each new one.
use super::Snapshots;
use ferrolb_proto::v1::{self, speaker_server};
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// A Watch call's answer.
type Follow<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Binds `addr` (an error if it cannot: the operator asked for this address), then serves
/// the admin API there for the life of the process; returns the address bound.
pub async fn serve(addr: SocketAddr, snapshots: Snapshots) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("binding the admin API to {addr}: {e}"))
    })?;
    // The bound address: with port 0, the one the kernel chose.
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "admin API listening");
    let service = speaker_server::SpeakerServer::new(Admin { snapshots })
        .max_decoding_message_size(ferrolb_proto::MAX_REQUEST_BYTES);
    tokio::spawn(async move {
        let served = ferrolb_proto::server()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the admin API stopped");
        }
    });
    Ok(bound)
}

struct Admin {
    snapshots: Snapshots,
}

impl Admin {
    fn node(&self) -> Option<v1::Node> {
        Some(v1::Node {
            name: self.snapshots.node.clone(),
        })
    }
}

/// The value of `published` now, wrapped.
fn now<S: Clone, T>(published: &watch::Receiver<S>, wrap: impl Fn(S) -> T) -> Response<T> {
    Response::new(wrap(published.borrow().clone()))
}

/// The value of `published` now, then each new one, wrapped.
fn follow<S, T>(
    published: &watch::Receiver<S>,
    wrap: impl Fn(S) -> T + Send + 'static,
) -> Response<Follow<T>>
where
    S: Clone + Send + Sync + 'static,
    T: Send + 'static,
{
    let stream = WatchStream::new(published.clone()).map(move |s| Ok(wrap(s)));
    Response::new(Box::pin(stream))
}

#[tonic::async_trait]
impl speaker_server::Speaker for Admin {
    type WatchMembersStream = Follow<v1::Members>;
    type WatchAnnouncementsStream = Follow<v1::Announcements>;
    type WatchSessionsStream = Follow<v1::Sessions>;
    type WatchBfdSessionsStream = Follow<v1::BfdSessions>;

    async fn list_members(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<v1::Members>, Status> {
        let node = self.node();
        Ok(now(&self.snapshots.members, |members| v1::Members {
            node: node.clone(),
            members,
        }))
    }

    async fn watch_members(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<Self::WatchMembersStream>, Status> {
        let node = self.node();
        Ok(follow(&self.snapshots.members, move |members| {
            v1::Members {
                node: node.clone(),
                members,
            }
        }))
    }

    async fn list_announcements(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<v1::Announcements>, Status> {
        let node = self.node();
        Ok(now(&self.snapshots.announcements, |announced| {
            v1::Announcements {
                node: node.clone(),
                announcements: announced.into_values().collect(),
            }
        }))
    }

    async fn watch_announcements(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<Self::WatchAnnouncementsStream>, Status> {
        let node = self.node();
        Ok(follow(&self.snapshots.announcements, move |announced| {
            v1::Announcements {
                node: node.clone(),
                announcements: announced.into_values().collect(),
            }
        }))
    }

    async fn list_sessions(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<v1::Sessions>, Status> {
        let node = self.node();
        Ok(now(&self.snapshots.sessions, |sessions| v1::Sessions {
            node: node.clone(),
            sessions: sessions.into_values().collect(),
        }))
    }

    async fn watch_sessions(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<Self::WatchSessionsStream>, Status> {
        let node = self.node();
        Ok(follow(&self.snapshots.sessions, move |sessions| {
            v1::Sessions {
                node: node.clone(),
                sessions: sessions.into_values().collect(),
            }
        }))
    }

    async fn list_bfd_sessions(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<v1::BfdSessions>, Status> {
        let node = self.node();
        Ok(now(&self.snapshots.bfd, |sessions| v1::BfdSessions {
            node: node.clone(),
            sessions,
        }))
    }

    async fn watch_bfd_sessions(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<Self::WatchBfdSessionsStream>, Status> {
        let node = self.node();
        Ok(follow(&self.snapshots.bfd, move |sessions| {
            v1::BfdSessions {
                node: node.clone(),
                sessions,
            }
        }))
    }
}

#[cfg(test)]
mod tests;
