//! The HTTP/1.1 accept loop, with the bounds an unauthenticated client must not be able to lift:
//! a header read timeout (which also closes idle kept-alive connections), a cap on open
//! connections, and a deadline on graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::ingress::Limits;
use crate::metrics::Metrics;

/// The most a connection buffers from its socket before the request handler reads it.
const READ_BUFFER: usize = 64 * 1024;

/// Serves `app` until `stop` turns true, then lets open connections finish their request for at
/// most `limits.shutdown_grace` before dropping them.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, close) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors, most likely: give connections in flight time to close.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = turned_true(&mut stop) => break,
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                connections.spawn(connection(stream, app.clone(), limits, metrics.clone(), close.clone(), slot));
            }
            Err(_) => {
                metrics.connection_refused();
                refuse(stream);
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "shutdown grace is over: dropping the connections still open");
        connections.shutdown().await;
    }
}

/// Resolves once `flag` is true (or can no longer change).
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|on| *on).await;
}

/// Beyond the cap: a short answer if the socket takes it at once, then the connection is closed.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n",
    );
}

async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    metrics: Metrics,
    mut close: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _open = Open::new(metrics);
    let _ = stream.set_nodelay(true);
    let mut builder = http1::Builder::new();
    // Each connection's read buffer stays small (headers fit easily): what a connection holds
    // outside the body budget is bounded, whatever the client sends.
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(READ_BUFFER);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = turned_true(&mut close) => {}
    }
    // Finishes the request in flight, if any, and closes instead of keeping the connection alive.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Counts a connection as open for as long as it lives, aborted or not.
struct Open(Metrics);

impl Open {
    fn new(metrics: Metrics) -> Open {
        metrics.connection(1);
        Open(metrics)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connection(-1);
    }
}
