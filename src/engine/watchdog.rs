//! A watchdog for a helper container (a backup's `tar` writing into the archive file): a process
//! of its own, `dstart __watch-helper SOCKET NAME`, started before the container is created.
//! When dstart says it is done, the watchdog ends; when dstart dies without saying so (SIGKILL,
//! the OOM killer), its end of the pipe closes and the watchdog removes the container with
//! `force`, which stops `tar`: nothing keeps writing after dstart is gone. It runs in a process
//! group of its own, so that a Ctrl-C at the terminal (which dstart handles itself) does not
//! reach it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// The hidden subcommand the watchdog runs as.
pub const SUBCOMMAND: &str = "__watch-helper";

/// How often the watchdog tries the removal: a create that was under way when dstart died may
/// finish after the first try.
const TRIES: u32 = 3;
const BETWEEN_TRIES: Duration = Duration::from_secs(1);

/// A running watchdog; [`Watchdog::done`] ends it without touching the container. Dropped
/// without that, it removes the container.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog of container `name` on the engine socket `socket`.
    pub fn start(socket: &Path, name: &str) -> io::Result<Watchdog> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(SUBCOMMAND)
            .arg(socket)
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// The container is gone (dstart removed it): the watchdog ends without a word to the
    /// engine.
    pub fn done(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"d");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing the pipe without a word: the watchdog removes the container.
        self.stdin.take();
    }
}

/// The watchdog itself: waits for dstart's word on stdin; if the pipe closes without it,
/// removes container `name` on `socket`.
pub fn watch(socket: &Path, name: &str) {
    let mut word = [0u8; 1];
    let said_done = loop {
        match io::stdin().read(&mut word) {
            Ok(n) => break n == 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    if said_done {
        return;
    }
    for attempt in 0..TRIES {
        if attempt > 0 {
            std::thread::sleep(BETWEEN_TRIES);
        }
        let _ = remove(socket, name);
    }
}

/// `DELETE /containers/NAME?force=1&v=1`; returns the HTTP status.
fn remove(socket: &Path, name: &str) -> io::Result<u16> {
    // Container names are `[a-zA-Z0-9][a-zA-Z0-9_.-]+`: nothing to encode in a path.
    if !crate::text::valid_container_name(name) {
        return Err(io::Error::other(format!(
            "`{name}` is not a container name"
        )));
    }
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "DELETE /containers/{name}?force=1&v=1 HTTP/1.1\r\nHost: docker\r\nUser-Agent: dstart/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )?;
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status)?;
    status
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected answer `{}`", status.trim())))
}
