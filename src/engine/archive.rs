//! The archive endpoint (`GET` and `PUT /containers/{id}/archive`) with plain blocking HTTP/1.1
//! requests on the engine's unix socket, for backups and restores.
//!
//! Why not through bollard: hyper hands a response body over one small chunk at a time (the
//! engine's chunks are 16 KiB and less), each a wake-up between the connection task and the
//! reader, and the engine waits for every hand-over. A backup read that way streams at about
//! half the speed of `curl` on the same socket; read here, into one large buffer on the thread
//! that writes the archive, it streams as fast as curl. A restore is sent the same way, in
//! large chunks from the thread that reads the archive. Other addresses (tcp, TLS) keep using
//! bollard.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{EngineError, from_status};

/// How long one read of the socket may block before the cancel check runs again.
const POLL: Duration = Duration::from_secs(1);

/// Bytes read from the socket at once.
const BUFFER: usize = 1 << 20;

/// The longest status line or header line accepted.
const MAX_LINE: usize = 16 << 10;

/// A socket whose reads fail once `cancel` says so, checked at least every [`POLL`]; a read
/// that merely timed out is tried again, until nothing has moved for `idle`
/// (`DSTART_HTTP_TIMEOUT`): then it fails with `ErrorKind::TimedOut` and `stalled` as its
/// message. (Not with `ErrorKind::Interrupted`: `read_exact` and `io::copy` retry that
/// forever.)
struct Cancellable {
    stream: UnixStream,
    cancel: Box<dyn Fn() -> bool + Send>,
    idle: Duration,
    last: Instant,
    stalled: String,
}

impl Cancellable {
    /// Runs one socket operation until it does something, fails, or `cancel` says to stop; a
    /// timeout only gives the cancel check its turn.
    fn until_done(
        &mut self,
        mut op: impl FnMut(&mut UnixStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            if (self.cancel)() {
                return Err(io::Error::other("interrupted"));
            }
            match op(&mut self.stream) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if self.last.elapsed() >= self.idle {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            self.stalled.clone(),
                        ));
                    }
                }
                other => {
                    self.last = Instant::now();
                    return other;
                }
            }
        }
    }
}

impl Read for Cancellable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.until_done(|stream| stream.read(buf))
    }
}

impl Write for Cancellable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.until_done(|stream| stream.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How the body of the response is delimited.
enum Framing {
    /// `Transfer-Encoding: chunked`: bytes left in the current chunk (0: a size line is next),
    /// whether a chunk was read (its CRLF comes before the next size line), and the end.
    Chunked {
        left: u64,
        started: bool,
        done: bool,
    },
    /// `Content-Length`: bytes left.
    Length(u64),
    /// Until the engine closes the connection.
    Close,
}

/// The tar stream of one path of a container.
pub struct ArchiveReader {
    input: BufReader<Cancellable>,
    framing: Framing,
    context: String,
    /// The `X-Docker-Container-Path-Stat` header: base64 of the JSON stat of the path.
    path_stat: Option<String>,
}

impl std::fmt::Debug for ArchiveReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveReader")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// Reads one CRLF-terminated line (without it); fails on an overlong line or an early end.
fn read_line(input: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 || !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the engine's response ended early",
        ));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| io::Error::other("the engine sent a header that is not text"))
}

/// `path` of container `name` as a request target.
fn target(api_version: &str, name: &str, path: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("path", path)
        .finish();
    // A path segment: `+` would be taken literally there, so everything but the characters of
    // container names is percent-encoded.
    let name: String = name
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/v{api_version}/containers/{name}/archive?{query}")
}

/// A connection to the engine for one request on the archive endpoint.
struct Exchange {
    context: String,
    name: String,
    path: String,
    /// The engine's socket as an address (for messages) and the bound on a stall.
    address: String,
    idle: Duration,
}

impl Exchange {
    fn new(socket: &Path, context: String, name: &str, path: &str, idle: Duration) -> Exchange {
        Exchange {
            context,
            name: name.to_string(),
            path: path.to_string(),
            address: format!("unix://{}", socket.display()),
            idle,
        }
    }

    fn stalled(&self) -> EngineError {
        EngineError::Timeout {
            address: self.address.clone(),
            call: self.context.clone(),
            secs: self.idle.as_secs(),
            stream: true,
        }
    }

    fn transport(&self, e: &io::Error) -> EngineError {
        if e.kind() == io::ErrorKind::TimedOut {
            return self.stalled();
        }
        EngineError::Transport {
            context: self.context.clone(),
            message: e.to_string(),
        }
    }

    /// Connects and sends the request line and headers for `method` on the archive of `path`.
    fn send(
        &self,
        socket: &Path,
        api_version: &str,
        method: &str,
        headers: &str,
        cancel: Box<dyn Fn() -> bool + Send>,
    ) -> Result<Cancellable, EngineError> {
        let stream = UnixStream::connect(socket).map_err(|e| self.transport(&e))?;
        stream
            .set_read_timeout(Some(POLL))
            .and_then(|()| stream.set_write_timeout(Some(POLL)))
            .map_err(|e| self.transport(&e))?;
        let mut conn = Cancellable {
            stream,
            cancel,
            idle: self.idle,
            last: Instant::now(),
            stalled: self.stalled().to_string(),
        };
        write!(
            conn,
            "{method} {} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dstart/{}\r\n{headers}Connection: close\r\n\r\n",
            target(api_version, &self.name, &self.path),
            env!("CARGO_PKG_VERSION")
        )
        .map_err(|e| self.transport(&e))?;
        Ok(conn)
    }

    /// Reads the answer's status and headers: the body as a reader when the status is `ok`,
    /// else the engine's error.
    fn answer(self, conn: Cancellable, ok: u16) -> Result<ArchiveReader, EngineError> {
        let mut input = BufReader::with_capacity(BUFFER, conn);
        let status_line = read_line(&mut input).map_err(|e| self.transport(&e))?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| EngineError::Transport {
                context: self.context.clone(),
                message: format!("unexpected answer `{status_line}`"),
            })?;
        let mut framing = Framing::Close;
        let mut path_stat = None;
        loop {
            let line = read_line(&mut input).map_err(|e| self.transport(&e))?;
            if line.is_empty() {
                break;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if key.eq_ignore_ascii_case("x-docker-container-path-stat") {
                path_stat = Some(value.to_string());
            }
            if key.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                framing = Framing::Chunked {
                    left: 0,
                    started: false,
                    done: false,
                };
            } else if key.eq_ignore_ascii_case("content-length")
                && !matches!(framing, Framing::Chunked { .. })
            {
                framing = Framing::Length(value.parse().map_err(|_| EngineError::Transport {
                    context: self.context.clone(),
                    message: format!("bad Content-Length `{value}`"),
                })?);
            }
        }
        let mut reader = ArchiveReader {
            input,
            framing,
            context: self.context.clone(),
            path_stat,
        };
        if status == ok {
            return Ok(reader);
        }
        // An error: the body is the engine's JSON `{"message": …}`.
        let mut body = Vec::new();
        let read = reader.by_ref().take(64 << 10).read_to_end(&mut body);
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| match read {
                Ok(_) => String::from_utf8_lossy(&body).trim().to_string(),
                Err(e) => e.to_string(),
            });
        // A 404 is about the container or about the path in it; the message says which.
        let (kind, what) = if message.contains("No such container") {
            ("container", &self.name)
        } else {
            ("path", &self.path)
        };
        Err(from_status(&self.context, kind, what, status, &message))
    }
}

/// Why a restore's upload failed.
#[derive(Debug)]
pub enum UploadError {
    /// Reading the tar to send.
    Read(io::Error),
    /// The engine (or the connection to it).
    Engine(EngineError),
}

/// Bytes sent per HTTP chunk of an upload.
const UPLOAD_CHUNK: usize = 1 << 20;

/// Unpacks the tar read from `body` into `path` of container `name`, sent as a chunked `PUT`
/// on `socket`. Blocks; gives up once `cancel` returns true, or when the engine takes nothing
/// and says nothing for `idle`.
pub fn upload(
    socket: &Path,
    api_version: &str,
    name: &str,
    path: &str,
    body: &mut dyn Read,
    cancel: Box<dyn Fn() -> bool + Send>,
    idle: Duration,
) -> Result<(), UploadError> {
    let exchange = Exchange::new(
        socket,
        format!("writing into `{path}` of `{name}`"),
        name,
        path,
        idle,
    );
    let mut conn = exchange
        .send(
            socket,
            api_version,
            "PUT",
            "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n",
            cancel,
        )
        .map_err(UploadError::Engine)?;
    let mut buf = vec![0u8; UPLOAD_CHUNK];
    let sent = loop {
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UploadError::Read(e)),
        };
        let written = if n == 0 {
            conn.write_all(b"0\r\n\r\n")
        } else {
            write!(conn, "{n:x}\r\n")
                .and_then(|()| conn.write_all(&buf[..n]))
                .and_then(|()| conn.write_all(b"\r\n"))
        };
        match written {
            Ok(()) if n == 0 => break Ok(()),
            Ok(()) => {}
            Err(e) => break Err(e),
        }
    };
    // The engine may have answered (an error) and stopped reading: its answer says why.
    match (exchange.answer(conn, 200), sent) {
        (Ok(_), Ok(())) => Ok(()),
        (Err(e), _) => Err(UploadError::Engine(e)),
        (Ok(_), Err(e)) => Err(UploadError::Engine(exchange_error(
            socket,
            format!("writing into `{path}` of `{name}`"),
            idle,
            &e,
        ))),
    }
}

/// The error of a failed write of an exchange already consumed by reading its answer.
fn exchange_error(socket: &Path, context: String, idle: Duration, e: &io::Error) -> EngineError {
    Exchange::new(socket, context, "", "", idle).transport(e)
}

impl ArchiveReader {
    /// Asks the engine on `socket` for the tar of `path` in container `name`. Blocks; reads give
    /// up once `cancel` returns true, or when no data arrives for `idle`.
    pub fn open(
        socket: &Path,
        api_version: &str,
        name: &str,
        path: &str,
        cancel: Box<dyn Fn() -> bool + Send>,
        idle: Duration,
    ) -> Result<ArchiveReader, EngineError> {
        let exchange = Exchange::new(
            socket,
            format!("reading `{path}` from `{name}`"),
            name,
            path,
            idle,
        );
        let conn = exchange.send(socket, api_version, "GET", "", cancel)?;
        exchange.answer(conn, 200)
    }

    /// The engine's `X-Docker-Container-Path-Stat` header, decoded (base64 of JSON): what
    /// the archived path is. `None` when the engine sent none or it cannot be read.
    pub fn path_stat<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        use base64::Engine as _;
        let raw = self.path_stat.as_deref()?;
        let json = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// The next chunk's size, after the CRLF that ends the previous one; 0 at the end (trailers
    /// read).
    fn next_chunk(&mut self, started: bool) -> io::Result<u64> {
        if started {
            let end = read_line(&mut self.input)?;
            if !end.is_empty() {
                return Err(io::Error::other("the engine's chunked answer is malformed"));
            }
        }
        let line = read_line(&mut self.input)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::other(format!("bad chunk size `{line}` from the engine")))?;
        if size == 0 {
            while !read_line(&mut self.input)?.is_empty() {}
        }
        Ok(size)
    }
}

impl Read for ArchiveReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = match &mut self.framing {
            Framing::Close => return self.input.read(buf),
            Framing::Length(0) | Framing::Chunked { done: true, .. } => return Ok(0),
            Framing::Chunked {
                left: 0, started, ..
            } => {
                let started = *started;
                let size = self.next_chunk(started)?;
                self.framing = Framing::Chunked {
                    left: size,
                    started: true,
                    done: size == 0,
                };
                if size == 0 {
                    return Ok(0);
                }
                size
            }
            Framing::Length(left) | Framing::Chunked { left, .. } => *left,
        };
        let n = usize::try_from(want).map_or(buf.len(), |w| w.min(buf.len()));
        let got = self.input.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: the engine's answer ended early", self.context),
            ));
        }
        match &mut self.framing {
            Framing::Length(left) | Framing::Chunked { left, .. } => *left -= got as u64,
            Framing::Close => {}
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    //! The HTTP framing, against canned answers on a socket of the test's own (the requests
    //! themselves are exercised against the real engine by the backup tests).
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A bound no test reaches.
    const LONG: Duration = Duration::from_secs(600);

    /// Serves `answer` to one connection on a new socket (after reading the request), then keeps
    /// the connection open for `linger`.
    fn serve(answer: &'static [u8], linger: Duration) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            let request = String::from_utf8(request).unwrap();
            assert!(
                request
                    .starts_with("GET /v1.41/containers/c%201/archive?path=%2Fdata+x HTTP/1.1\r\n"),
                "{request}"
            );
            conn.write_all(answer).unwrap();
            std::thread::sleep(linger);
        });
        (dir, socket)
    }

    fn open(
        socket: &Path,
        cancel: Box<dyn Fn() -> bool + Send>,
    ) -> Result<ArchiveReader, EngineError> {
        ArchiveReader::open(socket, "1.41", "c 1", "/data x", cancel, LONG)
    }

    fn body(answer: &'static [u8]) -> io::Result<Vec<u8>> {
        let (_dir, socket) = serve(answer, Duration::ZERO);
        let mut reader = open(&socket, Box::new(|| false)).unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).map(|_| got)
    }

    #[test]
    fn chunked_length_and_close_delimited_bodies_are_read_exactly() {
        let chunked = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nX-Docker-Container-Path-Stat: eyJuYW1lIjoiZGF0YSIsInNpemUiOjQwOTZ9\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\n";
        assert_eq!(body(chunked).unwrap(), b"hello world!");
        let length = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloTRAILING";
        assert_eq!(body(length).unwrap(), b"hello");
        let close = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert_eq!(body(close).unwrap(), b"all of it");
    }

    #[test]
    fn the_path_stat_header_is_decoded() {
        let (_dir, socket) = serve(
            b"HTTP/1.1 200 OK\r\nX-Docker-Container-Path-Stat: eyJuYW1lIjoiZGF0YSIsInNpemUiOjQwOTZ9\r\nContent-Length: 0\r\n\r\n",
            Duration::ZERO,
        );
        let reader = open(&socket, Box::new(|| false)).unwrap();
        let stat: serde_json::Value = reader.path_stat().unwrap();
        assert_eq!(stat["name"], "data");
        assert_eq!(stat["size"], 4096);
    }

    #[test]
    fn a_body_cut_short_is_an_error_not_a_short_archive() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly8byt";
        let e = body(chunked).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let length = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort";
        assert_eq!(
            body(length).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let malformed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(
            body(malformed)
                .unwrap_err()
                .to_string()
                .contains("bad chunk size")
        );
    }

    #[test]
    fn engine_errors_name_the_container_or_the_path() {
        let (_d, socket) = serve(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 39\r\n\r\n{\"message\":\"No such container: c 1\"}\n",
            Duration::ZERO,
        );
        let e = open(&socket, Box::new(|| false)).unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().ends_with("no such container `c 1`"), "{e}");
        let (_d, socket) = serve(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 58\r\n\r\n{\"message\":\"Could not find the file /data x in container\"}\n",
            Duration::ZERO,
        );
        let e = open(&socket, Box::new(|| false)).unwrap_err();
        assert!(e.to_string().ends_with("no such path `/data x`"), "{e}");
        let (_d, socket) = serve(
            b"HTTP/1.1 500 Internal Server Error\r\n\r\nboom",
            Duration::ZERO,
        );
        let e = open(&socket, Box::new(|| false)).unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn a_stalled_read_gives_up_soon_after_cancel() {
        let (_d, socket) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
            Duration::from_secs(30),
        );
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let mut reader = open(&socket, Box::new(move || flag.load(Ordering::SeqCst))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        let started = std::time::Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.store(true, Ordering::SeqCst);
        });
        let e = reader.read(&mut buf).unwrap_err();
        assert_eq!(e.to_string(), "interrupted");
        assert_ne!(
            e.kind(),
            io::ErrorKind::Interrupted,
            "io::copy would retry it"
        );
        assert!(started.elapsed() < POLL * 3, "took {:?}", started.elapsed());
    }

    #[test]
    fn a_stalled_read_fails_after_the_bound_naming_the_engine() {
        let (_d, socket) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
            Duration::from_secs(30),
        );
        let mut reader =
            ArchiveReader::open(&socket, "1.41", "c 1", "/data x", Box::new(|| false), POLL)
                .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        let started = std::time::Instant::now();
        let e = reader.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            e.to_string(),
            format!(
                "no data from the Docker engine at `unix://{}` for 1 s while reading `/data x` from `c 1`",
                socket.display()
            )
        );
        assert!(started.elapsed() < POLL * 3, "took {:?}", started.elapsed());
    }

    /// Accepts one connection and hands the request (head and chunked body, decoded) to
    /// `respond`, which gives the answer to send.
    fn serve_put(
        respond: impl FnOnce(&str, &[u8]) -> &'static [u8] + Send + 'static,
        read_body: bool,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::thread::JoinHandle<()>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut input = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let line = read_line(&mut input).unwrap();
                if line.is_empty() {
                    break;
                }
                head.push_str(&line);
                head.push('\n');
            }
            let mut body = Vec::new();
            let mut more = read_body;
            while more {
                let size = usize::from_str_radix(&read_line(&mut input).unwrap(), 16).unwrap();
                let mut chunk = vec![0u8; size];
                input.read_exact(&mut chunk).unwrap();
                body.extend_from_slice(&chunk);
                assert_eq!(read_line(&mut input).unwrap(), "");
                more = size > 0;
            }
            let answer = respond(&head, &body);
            (&conn).write_all(answer).unwrap();
        });
        (dir, socket, server)
    }

    fn put(socket: &Path, data: &[u8]) -> Result<(), UploadError> {
        upload(
            socket,
            "1.41",
            "c 1",
            "/",
            &mut &data[..],
            Box::new(|| false),
            LONG,
        )
    }

    #[test]
    fn an_upload_is_sent_chunked_and_whole() {
        let data: Vec<u8> = (0..(3 * UPLOAD_CHUNK + 777))
            .map(|i| u8::try_from(i % 253).unwrap())
            .collect();
        let expected = data.clone();
        let (_d, socket, server) = serve_put(
            move |head, body| {
                assert!(
                    head.starts_with("PUT /v1.41/containers/c%201/archive?path=%2F HTTP/1.1\n"),
                    "{head}"
                );
                assert!(head.contains("Transfer-Encoding: chunked\n"), "{head}");
                assert!(head.contains("Content-Type: application/x-tar\n"), "{head}");
                assert!(body == expected, "the body arrives whole");
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            },
            true,
        );
        put(&socket, &data).unwrap();
        server.join().unwrap();
    }

    #[test]
    fn an_upload_the_engine_refuses_reports_the_engines_error() {
        let (_d, socket, server) = serve_put(
            |_, _| {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 39\r\n\r\n{\"message\":\"No such container: c 1\"}\n"
            },
            false,
        );
        // Much more than the socket holds: the writes fail once the engine has hung up.
        let data = vec![7u8; 64 << 20];
        let e = put(&socket, &data).unwrap_err();
        server.join().unwrap();
        match e {
            UploadError::Engine(e) => {
                assert!(e.is_not_found(), "{e}");
                assert!(e.to_string().ends_with("no such container `c 1`"), "{e}");
            }
            UploadError::Read(e) => panic!("a read error: {e}"),
        }
    }

    #[test]
    fn an_upload_whose_tar_cannot_be_read_says_so() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("corrupt deflate stream"))
            }
        }
        let (_d, socket, _server) = serve_put(|_, _| b"", false);
        match upload(
            &socket,
            "1.41",
            "c",
            "/",
            &mut Broken,
            Box::new(|| false),
            LONG,
        ) {
            Err(UploadError::Read(e)) => assert_eq!(e.to_string(), "corrupt deflate stream"),
            other => panic!("{other:?}"),
        }
    }
}
