//! Binding and serving: bind first (so a taken port is an error at start, and tests learn the
//! port chosen for `:0`), then serve until the shutdown future resolves.

use crate::config::{ADDR_VAR, ApiConfig};
use axum::Router;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use stephook_store::Store;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{ADDR_VAR}: cannot listen on {addr}: {source} (--api-addr)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the API server failed: {0}")]
    Serve(#[source] io::Error),
}

/// A listening API server, not yet serving.
pub struct BoundApi {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

/// Binds the configured address and builds the router over `store`.
pub async fn bind(config: &ApiConfig, store: Store) -> Result<BoundApi, ServeError> {
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.addr,
        source,
    })?;
    let same_origin =
        crate::same_origin::SameOrigin::new(addr, &config.allowed_hosts, config.token.is_some());
    Ok(BoundApi {
        listener,
        router: crate::router(
            store,
            config.token.clone(),
            config.current_endpoint.clone(),
            same_origin,
        ),
        addr,
    })
}

impl BoundApi {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (what a Letta client's base URL is set to).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve)
    }
}
