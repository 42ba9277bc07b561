//! The listener loop: accepts connections up to a limit and serves each with hyper's HTTP/1,
//! closing the ones that stall.
//!
//! axum's own `serve` has no timeout and no limit: a connection that sends half a request head,
//! or sits idle between requests, is kept forever, and enough of them exhaust the process's file
//! descriptors so that nothing (not even `/healthz`) is answered. Here every connection has a
//! watchdog that closes it when
//!
//! - a request head does not arrive in full within the header timeout (counted from the
//!   connection's start, or from the first byte of a request on a kept-alive connection);
//! - no request comes within the idle timeout after the last answer ended;
//! - a request body does not arrive in full within the body timeout (counted from the head);
//!
//! and never while an answer is being sent, so SDK streams (which stay open for hours, with
//! heartbeats) are not cut. At most `max_connections` are served at once (by default 80% of the
//! file limit, less a reserve for the database and the runtime); past that, new connections
//! wait in the kernel's listen backlog, connections idle between requests are closed to make
//! room, and the wait is logged. A failed accept (EMFILE: out of file descriptors) is logged and
//! retried with a growing pause, never in a busy loop.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::metrics::ClosedBecause;
use crate::SharedState;

/// File descriptors kept free of connections by the default limit: the database and its
/// journal, the listener, the runtime's own, log files.
pub const FILE_RESERVE: u64 = 32;

/// The most connections the server serves at once, whatever the file limit or the option.
pub const MAX_CONNECTIONS: usize = 1_000_000;

/// The first pause after a failed accept; it doubles up to [`MAX_ACCEPT_PAUSE`].
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// At most one log line per this interval about the connection limit or failing accepts.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How often, while new connections wait for a slot, connections idle between requests are
/// told to close.
const PRESSURE_INTERVAL: Duration = Duration::from_millis(250);

/// The process's soft limit on open files, if it has one.
pub fn file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The default connection limit for a file limit: 80% of it less [`FILE_RESERVE`] (at least 1);
/// without a file limit, a million.
pub fn default_max_connections(file_limit: Option<u64>) -> usize {
    match file_limit {
        Some(limit) => {
            let share = (limit.saturating_mul(4) / 5).saturating_sub(FILE_RESERVE);
            usize::try_from(share).unwrap_or(MAX_CONNECTIONS).clamp(1, MAX_CONNECTIONS)
        }
        None => MAX_CONNECTIONS,
    }
}

/// How long connections may stall, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive in full within this.
    pub header_timeout: Duration,
    /// A kept-alive connection is closed after this long without a request.
    pub idle_timeout: Duration,
    /// A request body must arrive in full within this (from the end of its head).
    pub body_timeout: Duration,
    /// At most this many connections are served at once.
    pub max_connections: usize,
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request: since when, whether any byte of it came (and when), and whether
    /// this is the connection's first request.
    Waiting { since: Instant, first_byte: Option<Instant>, first_request: bool },
    /// Serving this many requests whose answers have not ended.
    Busy(usize),
}

/// What a connection's watchdog knows about it.
#[derive(Debug)]
struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            phase: Mutex::new(Phase::Waiting { since: Instant::now(), first_byte: None, first_request: true }),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Phase) -> bool) {
        let changed = change(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner));
        if changed {
            self.changed.notify_one();
        }
    }

    /// A request's head arrived: the connection is busy until its answer ends.
    fn begin(self: &Arc<Self>) -> Answering {
        self.update(|phase| {
            *phase = match *phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Waiting { .. } => Phase::Busy(1),
            };
            true
        });
        Answering(Arc::clone(self))
    }

    /// Bytes arrived: if the connection was waiting, a request has begun.
    fn saw_bytes(&self) {
        self.update(|phase| match phase {
            Phase::Waiting { first_byte: first_byte @ None, .. } => {
                *first_byte = Some(Instant::now());
                true
            }
            _ => false,
        });
    }

    /// When the connection is to be closed if nothing changes, and why; `None` while busy.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, ClosedBecause)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Busy(_) => None,
            Phase::Waiting { first_byte: Some(at), .. } => Some((at + limits.header_timeout, ClosedBecause::HeaderTimeout)),
            Phase::Waiting { since, first_request: true, .. } => Some((since + limits.header_timeout, ClosedBecause::HeaderTimeout)),
            Phase::Waiting { since, first_request: false, .. } => Some((since + limits.idle_timeout, ClosedBecause::IdleTimeout)),
        }
    }
}

/// Held while a request is answered; dropped when its answer has been sent (or abandoned).
#[derive(Debug)]
struct Answering(Arc<Watch>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.update(|phase| {
            *phase = match *phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Waiting { since: Instant::now(), first_byte: None, first_request: false },
            };
            true
        });
    }
}

/// Resolves with the reason when the connection has stalled past its deadline. `at_limit` is
/// notified when the connection limit is reached: a connection idle between requests then closes
/// at once.
async fn watchdog(watch: Arc<Watch>, limits: Limits, at_limit: Arc<Notify>) -> ClosedBecause {
    loop {
        let changed = watch.changed.notified();
        let pressure = at_limit.notified();
        tokio::pin!(changed, pressure);
        // Registered before the phase is read, so a notification in between is not missed.
        pressure.as_mut().enable();
        let Some((deadline, reason)) = watch.deadline(&limits) else {
            changed.await;
            continue;
        };
        if deadline <= Instant::now() {
            return reason;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = &mut changed => {}
            _ = &mut pressure, if reason == ClosedBecause::IdleTimeout => return ClosedBecause::IdleAtLimit,
        }
    }
}

/// The TCP stream, telling the watchdog when bytes arrive.
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.watch.saw_bytes();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that fails once its deadline passes.
struct Deadline {
    inner: Incoming,
    timer: Pin<Box<Sleep>>,
    limit: Duration,
    /// Counts the timeout once.
    state: Option<SharedState>,
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in full within {} s (the server's body timeout)", .0.as_secs_f64())]
pub struct BodyTimedOut(Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            ready => return ready.map(|frame| frame.map(|f| f.map_err(Into::into))),
        }
        if this.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(state) = this.state.take() {
            state.metrics.connection_closed(ClosedBecause::BodyTimeout);
            tracing::debug!(limit_secs = this.limit.as_secs_f64(), "a request body did not arrive in time");
        }
        Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body, holding the connection busy until it has been sent.
struct Tracked {
    inner: Body,
    _answering: Answering,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets each
/// connection finish its request, and returns when every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: SharedState,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    tracing::info!(
        max_connections = limits.max_connections,
        file_limit = file_limit().map_or_else(|| "unlimited".to_string(), |l| l.to_string()),
        header_timeout_secs = limits.header_timeout.as_secs_f64(),
        idle_timeout_secs = limits.idle_timeout.as_secs_f64(),
        body_timeout_secs = limits.body_timeout.as_secs_f64(),
        "connection limits"
    );
    if let Some(limit) = file_limit() {
        if limits.max_connections as u64 + FILE_RESERVE > limit {
            tracing::warn!(
                "--max-connections {} leaves less than {FILE_RESERVE} of the process's {limit} file descriptors for the rest: \
                 accepts may fail with EMFILE under load (raise the file limit, e.g. LimitNOFILE=, or lower --max-connections)",
                limits.max_connections
            );
        }
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let at_limit = Arc::new(Notify::new());
    tokio::pin!(shutdown);
    let mut limit_log = RateLimited::default();
    let mut accept_log = RateLimited::default();
    let mut pause = FIRST_ACCEPT_PAUSE;
    'accepting: loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                state.metrics.connection_limit_reached();
                if let Some(waits) = limit_log.tick() {
                    tracing::warn!(
                        waits,
                        "connection limit reached: {} connections are open; new ones wait in the listen backlog \
                         until one closes, and connections idle between requests are closed (see --max-connections)",
                        limits.max_connections
                    );
                }
                let waited = Instant::now();
                let slot = loop {
                    at_limit.notify_waiters();
                    tokio::select! {
                        slot = Arc::clone(&slots).acquire_owned() => match slot {
                            Ok(slot) => break slot,
                            Err(_) => break 'accepting,
                        },
                        _ = tokio::time::sleep(PRESSURE_INTERVAL) => {}
                        _ = &mut shutdown => break 'accepting,
                    }
                };
                tracing::debug!(waited_ms = waited.elapsed().as_millis() as u64, "a connection slot is free again");
                slot
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Some(failures) = accept_log.reset() {
                    tracing::info!(failures, "accepting connections again");
                }
                pause = FIRST_ACCEPT_PAUSE;
                let connection = serve_connection(stream, peer, router.clone(), Arc::clone(&state), limits, Arc::clone(&at_limit), slot);
                tokio::spawn(connection);
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                state.metrics.accept_error();
                if let Some(failures) = accept_log.tick() {
                    tracing::error!(
                        failures,
                        open = limits.max_connections - slots.available_permits(),
                        file_limit = file_limit().map_or_else(|| "unlimited".to_string(), |l| l.to_string()),
                        "accepting a connection failed: {e}; retrying in {} ms",
                        pause.as_millis()
                    );
                }
                drop(slot);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = &mut shutdown => break,
                }
                pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    state.shutting_down.send_replace(true);
    // Every connection holds a slot until it closes: all of them free means all are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _all = slots.acquire_many(all).await;
    Ok(())
}

/// Serves one connection until it closes, the watchdog closes it, or the server shuts down
/// (then it finishes its current request first).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    state: SharedState,
    limits: Limits,
    at_limit: Arc<Notify>,
    _slot: OwnedSemaphorePermit,
) {
    state.metrics.connections_open(1);
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched { stream, watch: Arc::clone(&watch) });
    let service_state = Arc::clone(&state);
    let service_watch = Arc::clone(&watch);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let answering = service_watch.begin();
        let router = router.clone();
        let state = Arc::clone(&service_state);
        async move {
            let (mut parts, incoming) = request.into_parts();
            // The peer address is what the console throttles sign-ins by.
            parts.extensions.insert(ConnectInfo(peer));
            let body = if http_body::Body::is_end_stream(&incoming) {
                Body::empty()
            } else {
                let timer = Box::pin(tokio::time::sleep(limits.body_timeout));
                Body::new(Deadline { inner: incoming, timer, limit: limits.body_timeout, state: Some(state) })
            };
            let response = match router.oneshot(hyper::Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| Tracked { inner, _answering: answering }))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // The watchdog keeps the time; hyper's own header timer would also run while idle.
        .header_read_timeout(None)
        .serve_connection(io, service);
    let watchdog = watchdog(watch, limits, at_limit);
    let mut stopping = state.shutting_down.subscribe();
    tokio::pin!(connection, watchdog);
    let mut graceful = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!("connection from {peer} ended: {e}");
                }
                break;
            }
            reason = &mut watchdog => {
                // Dropping the connection closes the socket.
                state.metrics.connection_closed(reason);
                tracing::debug!(reason = reason.as_str(), "closed a stalled connection");
                break;
            }
            _ = stopping.wait_for(|stop| *stop), if !graceful => {
                connection.as_mut().graceful_shutdown();
                graceful = true;
            }
        }
    }
    state.metrics.connections_open(-1);
}

/// Errors of one incoming connection, not of the listener: the next accept may succeed at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// A log line at most every [`LOG_INTERVAL`] about a run of events (failed accepts, waits for a
/// connection slot), so a flood of them cannot flood the log.
#[derive(Debug, Default)]
struct RateLimited {
    last: Option<Instant>,
    /// Events since the last line.
    since_line: u64,
    /// Events since the run began.
    in_run: u64,
    /// Whether a line was logged about this run.
    logged: bool,
}

impl RateLimited {
    /// Counts an event; returns the number of events since the last line if a line is due.
    fn tick(&mut self) -> Option<u64> {
        self.since_line += 1;
        self.in_run += 1;
        let due = self.last.is_none_or(|last| last.elapsed() >= LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last = Some(Instant::now());
        self.logged = true;
        Some(std::mem::take(&mut self.since_line))
    }

    /// Ends a run; returns how many events it had if a line was logged about it (the next line
    /// still waits for the interval, so runs that come and go cannot flood the log either).
    fn reset(&mut self) -> Option<u64> {
        let run = std::mem::take(&mut self.in_run);
        self.since_line = 0;
        std::mem::take(&mut self.logged).then_some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_leaves_a_fifth_of_the_file_limit_and_a_reserve() {
        assert_eq!(default_max_connections(Some(1024)), 787);
        assert_eq!(default_max_connections(Some(65_536)), 52_396);
        assert_eq!(default_max_connections(Some(16)), 1);
        assert_eq!(default_max_connections(None), MAX_CONNECTIONS);
    }
}
