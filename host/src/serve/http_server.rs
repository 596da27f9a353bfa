//! Accepting connections under limits: hyper's HTTP/1 server with a
//! deadline for each request head (new and idle connections alike), a cap
//! on connections served at once, and a graceful shutdown with a deadline.
//!
//! Past the cap a connection is not refused at the socket (a client would
//! only see a reset and retry at once): it is served one request by the
//! overflow router, which answers `GET /healthz` as usual and everything
//! else 503 with `Retry-After`, then closed. Past the cap and the overflow
//! allowance a connection is closed unread, so a flood cannot take the
//! descriptors that the served connections and the stores need.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How the server treats connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections served by the full router at once.
    pub max_connections: usize,
    /// A connection that has not sent a complete request head within this
    /// long is closed (hyper starts the timer when it waits for a head, on
    /// a new connection and between keep-alive requests).
    pub header_timeout: Duration,
    /// After the shutdown signal: how long requests in flight may finish.
    pub shutdown_timeout: Duration,
}

/// Connections past the cap that still get their one overflow answer.
const OVERFLOW_ALLOWANCE: usize = 256;
/// The overflow router's connections get less time to send their head.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts a connection while it lives.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, lets requests in flight finish within the shutdown timeout,
/// and returns (whether or not they all finished).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    overflow: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let live = Arc::new(AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors (EMFILE) or a connection reset
                    // before accept: neither ends the server.
                    tracing::warn!("accepting a connection failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let count = live.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = Live(live.clone());
        if count > limits.max_connections + OVERFLOW_ALLOWANCE {
            drop(stream);
            continue;
        }
        let overloaded = count > limits.max_connections;
        let (router, header_timeout) =
            if overloaded { (overflow.clone(), OVERFLOW_HEADER_TIMEOUT) } else { (app.clone(), limits.header_timeout) };
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(!overloaded);
        let service = TowerToHyperService::new(router);
        // Each request carries the client's address (login throttling
        // counts failures per client).
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            hyper::service::Service::call(&service, request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _live = guard;
            if let Err(err) = connection.await {
                tracing::debug!("connection ended: {err}");
            }
        });
    }
    drop(listener);
    let in_flight = live.load(Ordering::Relaxed);
    tracing::info!(connections = in_flight, "stopped accepting; finishing requests in flight");
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            connections = live.load(Ordering::Relaxed),
            "requests still in flight after {:?} (--shutdown-timeout); closing them",
            limits.shutdown_timeout
        );
    }
}

/// Raises this process's soft limit on open files to its hard limit (at
/// most 65,536): the connection cap is meant to bind before the descriptors
/// run out, not after.
pub fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            let wanted = limit.rlim_max.min(65_536);
            if wanted > limit.rlim_cur {
                let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    tracing::debug!(from = limit.rlim_cur, to = wanted, "raised the open-files limit");
                }
            }
        }
    }
}
