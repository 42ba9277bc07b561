//! A Server-Sent Events client on a raw socket (hand-written HTTP/1.1 with chunked decoding), so
//! that a test sees exactly what the server writes and when the connection ends.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// One event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: String,
}

/// What the stream gave next.
#[derive(Debug)]
pub enum Item {
    Event(SseEvent),
    Comment(#[allow(dead_code)] String),
    Eof,
    Timeout,
}

/// An open stream.
pub struct Sse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    lines: Receiver<Option<String>>,
    socket: TcpStream,
    pending: SseEvent,
    has_fields: bool,
}

fn read_chunked(reader: &mut impl BufRead, tx: &mpsc::Sender<Option<String>>) -> std::io::Result<()> {
    let mut partial = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Ok(());
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("").trim().to_string();
        if size_text.is_empty() {
            continue;
        }
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("chunk size {size_text:?}: {e}")))?;
        if size == 0 {
            return Ok(());
        }
        let mut chunk = vec![0u8; size];
        reader.read_exact(&mut chunk)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        partial.extend_from_slice(&chunk);
        while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if tx.send(Some(text)).is_err() {
                return Ok(());
            }
        }
    }
}

impl Sse {
    /// `GET /sdk/v1/stream` at `address` (`host:port`) with a bearer key and optionally
    /// `Last-Event-ID`.
    pub fn open(address: &str, key: &str, last_event_id: Option<&str>) -> Sse {
        let mut socket = TcpStream::connect(address).expect("connect");
        let mut request = format!(
            "GET /sdk/v1/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).expect("send request");
        let mut reader = BufReader::new(socket.try_clone().expect("clone socket"));
        socket.set_read_timeout(None).expect("timeout");
        reader.get_ref().set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status code");
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        reader.get_ref().set_read_timeout(None).expect("timeout");
        let (tx, rx) = mpsc::channel();
        let chunked = headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        std::thread::spawn(move || {
            if chunked {
                let _ = read_chunked(&mut reader, &tx);
            } else {
                for line in reader.lines() {
                    match line {
                        Ok(l) => {
                            if tx.send(Some(l)).is_err() {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            let _ = tx.send(None);
        });
        Sse { status, headers, lines: rx, socket, pending: SseEvent::default(), has_fields: false }
    }

    /// The next event or comment within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Item {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(line)) => {
                    if line.is_empty() {
                        if self.has_fields {
                            self.has_fields = false;
                            return Item::Event(std::mem::take(&mut self.pending));
                        }
                        continue;
                    }
                    if let Some(comment) = line.strip_prefix(':') {
                        return Item::Comment(comment.trim().to_string());
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => self.pending.event = value.to_string(),
                        "id" => self.pending.id = value.to_string(),
                        "data" => {
                            if !self.pending.data.is_empty() {
                                self.pending.data.push('\n');
                            }
                            self.pending.data.push_str(value);
                        }
                        _ => {}
                    }
                    self.has_fields = true;
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return Item::Eof,
                Err(RecvTimeoutError::Timeout) => return Item::Timeout,
            }
        }
    }

    /// The next event, end or timeout within `timeout`, skipping comments.
    fn next_but_comments(&mut self, timeout: Duration) -> Item {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Item::Comment(_) => continue,
                other => return other,
            }
        }
    }

    /// The next event within `timeout`, skipping comments; panics on anything else.
    pub fn next_event(&mut self, timeout: Duration) -> SseEvent {
        match self.next_but_comments(timeout) {
            Item::Event(e) => e,
            other => panic!("expected an event within {timeout:?}, got {other:?}"),
        }
    }

    /// Asserts that no event arrives within `wait` (comments are fine).
    pub fn assert_no_event(&mut self, wait: Duration) {
        match self.next_but_comments(wait) {
            Item::Timeout => {}
            other => panic!("expected no event within {wait:?}, got {other:?}"),
        }
    }

    /// Asserts that the stream ends (comments are fine) within `timeout`.
    pub fn assert_ends(&mut self, timeout: Duration) {
        match self.next_but_comments(timeout) {
            Item::Eof => {}
            other => panic!("expected the stream to end within {timeout:?}, got {other:?}"),
        }
    }

    /// Closes the connection.
    pub fn close(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.close();
    }
}
