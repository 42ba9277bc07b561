//! Connections over real sockets: a request head or body that stalls, a kept-alive connection
//! left idle, and more connections than the limit are closed or kept waiting so that nothing
//! starves the server; streams, the peer address and graceful shutdown keep working.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use avsb_server::Options;

use crate::common::{try_request, Server};
use crate::support::{everyone, save_test, sdk_key};

/// Options with short connection timeouts (and everything else as in production).
fn short(header: f64, idle: f64, body: f64) -> Options {
    Options {
        header_timeout: Duration::from_secs_f64(header),
        idle_timeout: Duration::from_secs_f64(idle),
        body_timeout: Duration::from_secs_f64(body),
        ..Options::default()
    }
}

fn connect(s: &Server) -> TcpStream {
    let stream = TcpStream::connect(s.address()).expect("connect");
    stream.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream
}

/// Reads (and discards) until the server closes the connection, for at most `within`; returns
/// how long that took, or `None` if it is still open.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 8192];
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(_) => return Some(start.elapsed()),
        }
    }
}

/// Reads one answer with a `Content-Length` from a kept-alive connection: its status and body.
fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .expect("a content-length");
            if data.len() >= end + 4 + length {
                let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
                return (status, String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned());
            }
        }
        let n = stream.read(&mut buf).expect("an answer");
        assert!(n > 0, "the connection closed before the answer ended: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    }
}

/// The value of the metric line that starts with `prefix` (name and labels), or 0.
fn metric(s: &Server, prefix: &str) -> f64 {
    let reply = s.call("GET", "/metrics", None, None);
    reply
        .body
        .lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

#[test]
fn a_request_head_sent_in_part_is_closed_after_the_header_timeout() {
    let s = Server::start_with(short(1.0, 30.0, 30.0));
    let mut stream = connect(&s);
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n").expect("half a head");
    assert_eq!(closed_within(&mut stream, Duration::from_millis(500)), None, "closed before the header timeout");
    let closed = closed_within(&mut stream, Duration::from_secs(5));
    assert!(closed.is_some(), "a half-sent head kept its connection open 5.5 s with a 1 s header timeout");
    let mut silent = connect(&s);
    assert!(closed_within(&mut silent, Duration::from_secs(5)).is_some(), "a connection that sends nothing stays open");
    assert!(metric(&s, r#"avsb_connections_closed_by_server_total{reason="header_timeout"}"#) >= 2.0);
}

#[test]
fn a_kept_alive_connection_is_closed_after_the_idle_timeout_and_not_at_the_header_timeout() {
    let s = Server::start_with(short(0.5, 3.0, 30.0));
    let mut stream = connect(&s);
    stream.write_all(HEALTHZ).expect("a request");
    assert_eq!(read_answer(&mut stream).0, 200);
    // Past the header timeout, within the idle one: the connection still takes a request.
    std::thread::sleep(Duration::from_millis(1500));
    stream.write_all(HEALTHZ).expect("a second request");
    assert_eq!(read_answer(&mut stream).0, 200);
    let since = Instant::now();
    let closed = closed_within(&mut stream, Duration::from_secs(8)).expect("an idle connection stays open 8 s after a 3 s idle timeout");
    assert!(since.elapsed() >= Duration::from_millis(2500), "closed after {closed:?}, before the idle timeout");
    assert!(metric(&s, r#"avsb_connections_closed_by_server_total{reason="idle_timeout"}"#) >= 1.0);
}

/// Sends `head` (which announces a body), then one byte of body every 100 ms from another
/// thread; returns the connection.
fn trickle(s: &Server, head: String) -> TcpStream {
    let mut stream = connect(s);
    stream.write_all(head.as_bytes()).expect("the head");
    let mut writer = stream.try_clone().expect("clone");
    std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    stream
}

#[test]
fn a_body_sent_a_byte_at_a_time_is_cut_after_the_body_timeout() {
    let s = Server::start_with(short(10.0, 30.0, 1.0));
    let key = sdk_key(&s);
    // A small body (read before routing) and a large one (read by the admin extractor).
    let events = format!(
        "POST /sdk/v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    let matrix = format!(
        "PUT /api/v1/projects/demo/environments/development/matrix HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
        s.var("AVSB_ADMIN_TOKEN")
    );
    for head in [events, matrix] {
        let start = Instant::now();
        let mut stream = trickle(&s, head);
        let (status, body) = read_answer(&mut stream);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("unreadable_body") && body.contains("body timeout"), "{body}");
        assert!(closed_within(&mut stream, Duration::from_secs(5)).is_some(), "the connection stays open after the refusal");
        assert!(start.elapsed() < Duration::from_secs(6), "cut only after {:?}", start.elapsed());
    }
    assert!(metric(&s, r#"avsb_connections_closed_by_server_total{reason="body_timeout"}"#) >= 2.0);
}

#[test]
fn an_sdk_stream_is_not_cut_by_the_idle_or_header_timeout() {
    let options = Options { heartbeat: Duration::from_secs(60), ..short(0.5, 0.5, 0.5) };
    let s = Server::start_with(options);
    let mut stream = s.stream(&sdk_key(&s), None);
    assert_eq!(stream.status, 200);
    stream.next_event(Duration::from_secs(5));
    // Silent for several idle timeouts (no heartbeat is due), then a change arrives.
    std::thread::sleep(Duration::from_secs(3));
    let version = save_test(&s, "after-the-silence", &everyone("after-the-silence", 1));
    let event = stream.next_event(Duration::from_secs(10));
    assert!(event.id.starts_with(&format!("{version}.")), "{event:?}");
}

#[test]
fn at_the_connection_limit_new_connections_wait_and_healthz_answers_once_a_slot_frees() {
    let options = Options { max_connections: Some(3), ..short(1.0, 30.0, 30.0) };
    let s = Server::start_with(options);
    let silent: Vec<TcpStream> = (0..3).map(|_| connect(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let reply = try_request("GET", &format!("{}/healthz", s.base()), &[], None).expect("healthz answers");
    assert_eq!(reply.status, 200);
    // It waited for the silent connections' header timeout, no longer.
    assert!(start.elapsed() >= Duration::from_millis(500), "answered in {:?}, past a full limit", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(8), "answered only after {:?}", start.elapsed());
    assert!(metric(&s, "avsb_connection_limit_waits_total") >= 1.0);
    drop(silent);
}

#[test]
fn at_the_connection_limit_connections_idle_between_requests_make_room() {
    let options = Options { max_connections: Some(2), ..short(30.0, 30.0, 30.0) };
    let s = Server::start_with(options);
    let mut kept: Vec<TcpStream> = (0..2).map(|_| connect(&s)).collect();
    for stream in &mut kept {
        stream.write_all(HEALTHZ).expect("a request");
        assert_eq!(read_answer(stream).0, 200);
    }
    let start = Instant::now();
    let reply = try_request("GET", &format!("{}/healthz", s.base()), &[], None).expect("healthz answers");
    assert_eq!(reply.status, 200);
    assert!(start.elapsed() < Duration::from_secs(3), "waited {:?} for idle connections", start.elapsed());
    assert!(kept.iter_mut().any(|k| closed_within(k, Duration::from_secs(1)).is_some()), "no idle connection was closed");
    assert!(metric(&s, r#"avsb_connections_closed_by_server_total{reason="idle_at_limit"}"#) >= 1.0);
}

#[test]
fn the_console_still_sees_the_peer_address() {
    let s = Server::start_demo();
    let page = try_request("GET", &format!("{}/login", s.base()), &[], None).expect("the sign-in page");
    let cookie = page.header("set-cookie").expect("a form cookie").split(';').next().unwrap().to_string();
    let at = page.body.find("name=\"csrf-token\" content=\"").expect("a CSRF token") + 27;
    let token = page.body[at..].split('"').next().unwrap().to_string();
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf", token.as_str()), ("username", "nobody"), ("password", "wrong password"), ("next", "/")])
        .finish();
    let origin = s.base().to_string();
    let headers = [("Cookie", cookie.as_str()), ("Origin", origin.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    let reply = try_request("POST", &format!("{}/login", s.base()), &headers, Some(form.as_bytes())).expect("an answer");
    assert_eq!(reply.status, 422, "{}", reply.body);
    // Failed sign-ins are throttled per client address: it is the socket's.
    let failures = s.block_on(s.state.store.login_failures("client:127.0.0.1")).expect("the store");
    assert!(failures.is_some_and(|f| f.failures == 1), "no failure counted for 127.0.0.1: {failures:?}");
}

#[test]
fn shutdown_closes_idle_connections_and_ends_streams_at_once() {
    let mut s = Server::start_with(short(1.0, 60.0, 60.0));
    let mut idle = connect(&s);
    idle.write_all(HEALTHZ).expect("a request");
    assert_eq!(read_answer(&mut idle).0, 200);
    let mut stream = s.stream(&sdk_key(&s), None);
    stream.next_event(Duration::from_secs(5));
    let _half = {
        let mut half = connect(&s);
        half.write_all(b"GET /healthz HTTP/1.1\r\n").expect("half a head");
        half
    };
    let start = Instant::now();
    s.stop().expect("a clean stop");
    assert!(start.elapsed() < Duration::from_secs(5), "stopping took {:?}", start.elapsed());
    assert!(closed_within(&mut idle, Duration::from_secs(1)).is_some());
    stream.assert_ends(Duration::from_secs(1));
}
