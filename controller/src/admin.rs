//! The admin API (`ferrolb-proto`'s Controller service): the pools and their usage, and the
//! IPs each Service holds. The loop publishes them after each pass; the server only reads
//! what was published.
use crate::reconcile::Controller;
use ferrolb_proto::v1::{self, controller_server};
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// What the loop publishes for the server.
pub struct Published {
    pools: watch::Sender<Vec<v1::Pool>>,
    allocations: watch::Sender<Vec<v1::Allocation>>,
}

impl Default for Published {
    fn default() -> Published {
        Published {
            pools: watch::Sender::new(Vec::new()),
            allocations: watch::Sender::new(Vec::new()),
        }
    }
}

impl Published {
    /// After a pass: the pools in force with their usage, and every Service's IPs.
    pub fn publish(&self, controller: &Controller) {
        let pools = pools(controller);
        self.pools.send_if_modified(|before| {
            let changed = *before != pools;
            *before = pools;
            changed
        });
        let allocations = allocations(controller);
        self.allocations.send_if_modified(|before| {
            let changed = *before != allocations;
            *before = allocations;
            changed
        });
    }
}

/// The pools in force, with how many of their addresses Services hold.
fn pools(controller: &Controller) -> Vec<v1::Pool> {
    let Some(config) = controller.config() else {
        return Vec::new();
    };
    let usages = controller.allocator().usages();
    let total = |a: Option<u128>, b: Option<u128>| {
        let sum = a.zip(b).and_then(|(a, b)| a.checked_add(b));
        sum.map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(u64::MAX))
    };
    config
        .pools
        .values()
        .map(|pool| {
            let usage = usages.get(&pool.name).cloned().unwrap_or_default();
            v1::Pool {
                name: pool.name.clone(),
                cidrs: pool.ranges.iter().map(ToString::to_string).collect(),
                size: total(usage.capacity_v4.to_u128(), usage.capacity_v6.to_u128()),
                used: total(Some(usage.in_use_v4), Some(usage.in_use_v6)),
                auto_assign: pool.auto_assign,
            }
        })
        .collect()
}

/// Every Service holding IPs, by namespace and name.
fn allocations(controller: &Controller) -> Vec<v1::Allocation> {
    let mut allocations: Vec<v1::Allocation> = controller
        .allocator()
        .assignments()
        .map(|(service, assignment)| v1::Allocation {
            service: service.to_string(),
            pool: assignment.pool.to_string(),
            ips: assignment.ips.iter().map(ToString::to_string).collect(),
        })
        .collect();
    allocations.sort_by(|a, b| a.service.cmp(&b.service));
    allocations
}

/// Binds `addr` (an error if it cannot: the operator asked for this address), then serves
/// the admin API there for the life of the process.
pub async fn serve(addr: SocketAddr, published: &Published) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("binding the admin API to {addr}: {e}"))
    })?;
    // The bound address: with port 0 (tests), the one the kernel chose.
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "admin API listening");
    let service = controller_server::ControllerServer::new(Admin {
        pools: published.pools.subscribe(),
        allocations: published.allocations.subscribe(),
    })
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
    Ok(())
}

struct Admin {
    pools: watch::Receiver<Vec<v1::Pool>>,
    allocations: watch::Receiver<Vec<v1::Allocation>>,
}

#[tonic::async_trait]
impl controller_server::Controller for Admin {
    async fn list_pools(&self, _: Request<v1::ListRequest>) -> Result<Response<v1::Pools>, Status> {
        let pools = self.pools.borrow().clone();
        Ok(Response::new(v1::Pools { pools }))
    }

    async fn list_allocations(
        &self,
        _: Request<v1::ListRequest>,
    ) -> Result<Response<v1::Allocations>, Status> {
        let allocations = self.allocations.borrow().clone();
        Ok(Response::new(v1::Allocations { allocations }))
    }
}
