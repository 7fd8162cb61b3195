//! No engine call hangs for ever (`DSTART_HTTP_TIMEOUT`): an engine that accepts and never
//! answers, and a proxy in front of the real engine that stalls one answer part-way (an
//! archive stream, a build stream, a prompt inspect). Each fails with exit 1 soon after the
//! bound, naming the engine's address and the call.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Sandbox, base_image};

/// The bound the tests set, in seconds.
const BOUND: &str = "2";

/// A unix socket that accepts connections and never says a word; closed on drop.
struct Silent {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Silent {
    fn start() -> Silent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Silent {
            path,
            stop,
            _dir: dir,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A proxy to the engine socket: the answer to a request whose request line contains
/// `pattern` stops after `after` bytes, and the connection stays open, silent.
struct StallProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// How many answers were stalled.
    stalled: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl StallProxy {
    fn start(pattern: &str, after: usize) -> StallProxy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicUsize::new(0));
        let (flag, count, pattern) = (Arc::clone(&stop), Arc::clone(&stalled), pattern.to_string());
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (flag, count, pattern) =
                            (Arc::clone(&flag), Arc::clone(&count), pattern.clone());
                        std::thread::spawn(move || relay(&client, &pattern, after, &flag, &count));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        StallProxy {
            path,
            stop,
            stalled,
            _dir: dir,
        }
    }

    fn address(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies one client connection to the engine and back, stalling as [`StallProxy`] says.
fn relay(
    client: &UnixStream,
    pattern: &str,
    after: usize,
    stop: &AtomicBool,
    stalled: &AtomicUsize,
) {
    let Ok(upstream) = UnixStream::connect("/var/run/docker.sock") else {
        return;
    };
    let tick = Some(Duration::from_millis(100));
    for s in [client, &upstream] {
        let _ = s.set_read_timeout(tick);
    }
    let armed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Requests: forwarded as they come; one that matches arms the stall of its answer.
        scope.spawn(|| {
            let (mut from, mut to) = (client, &upstream);
            let mut buf = vec![0u8; 64 << 10];
            while !stop.load(Ordering::SeqCst) {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if String::from_utf8_lossy(&buf[..n]).contains(pattern) {
                            armed.store(true, Ordering::SeqCst);
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
        });
        // Answers: forwarded, except past `after` bytes of an armed one.
        let (mut from, mut to) = (&upstream, client);
        let mut buf = vec![0u8; 64 << 10];
        let mut sent = 0usize;
        while !stop.load(Ordering::SeqCst) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut n = n;
                    if armed.load(Ordering::SeqCst) {
                        n = n.min(after.saturating_sub(sent));
                        sent += n;
                    }
                    if n > 0 && to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if armed.load(Ordering::SeqCst) && sent >= after {
                        stalled.fetch_add(1, Ordering::SeqCst);
                        while !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = client.shutdown(std::net::Shutdown::Both);
        let _ = upstream.shutdown(std::net::Shutdown::Both);
    });
}

/// Runs `dstart -H ADDRESS ARGS` with the bound; asserts exit 1 within a few seconds of it
/// (with the hint that names the variable, when `hint`) and returns stderr.
fn fails_in_time(sb: &Sandbox, address: &str, args: &[&str], hint: bool) -> String {
    let mut all = vec!["-H", address];
    all.extend_from_slice(args);
    let started = Instant::now();
    let out = sb
        .command(&all)
        .env("DSTART_HTTP_TIMEOUT", BOUND)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(12),
        "took {took:?}: {stderr}"
    );
    assert!(
        !hint || stderr.contains("hint: DSTART_HTTP_TIMEOUT=SECONDS sets how long dstart waits"),
        "{stderr}"
    );
    stderr
}

#[test]
fn an_engine_that_never_answers_fails_within_the_bound() {
    let sb = Sandbox::new("silent");
    let id = sb.id.clone();
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-c:\n  image: {}\n---\n- {id}-c: {{command: create}}\n",
            base_image()
        ),
    );
    let silent = Silent::start();
    let address = format!("unix://{}", silent.path.display());
    let stderr = fails_in_time(&sb, &address, &["run", &format!("{id}/start")], true);
    assert!(
        stderr.starts_with(&format!(
            "error: no answer from the Docker engine at `{address}` within 2 s while asking for its API version\n"
        )),
        "{stderr}"
    );
}

#[test]
fn a_stall_in_a_prompt_call_names_the_call() {
    let sb = Sandbox::new("stallcall");
    let id = sb.id.clone();
    let c = format!("{id}-c");
    sb.unit(
        &id,
        "start",
        &format!(
            "{c}:\n  image: {}\n---\n- {c}: {{command: create}}\n",
            base_image()
        ),
    );
    let proxy = StallProxy::start(&format!("/containers/{c}/json"), 0);
    let stderr = fails_in_time(
        &sb,
        &proxy.address(),
        &["run", &format!("{id}/start")],
        true,
    );
    assert!(
        stderr.contains(&format!(
            "no answer from the Docker engine at `{}` within 2 s while inspecting a container",
            proxy.address()
        )),
        "{stderr}"
    );
    assert!(proxy.stalled.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_stall_in_the_middle_of_a_stream_fails_it() {
    let sb = Sandbox::new("stallstream");
    let id = sb.id.clone();
    let app = format!("{id}-app");
    // 4 MB of noise in a volume: the archive is far longer than what passes the proxy.
    sb.unit(
        &id,
        "start",
        &format!(
            "{app}:\n  image: {}\n  command: [\"sh\", \"-c\", \"head -c 4000000 /dev/urandom > /data/noise; echo written; sleep 3600\"]\n  volumes: ['{id}-vol:/data']\n---\n- {app}: {{command: start, ready: {{log: written, timeout: 30}}}}\n",
            base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    sb.unit(
        &id,
        "backup",
        &format!("import: {id}/start\n---\n- {app}: {{command: backup, backup_dir: bk, backup_name: data}}\n"),
    );
    let proxy = StallProxy::start("/archive?", 200_000);
    let stderr = fails_in_time(
        &sb,
        &proxy.address(),
        &["run", &format!("{id}/backup")],
        false,
    );
    assert!(
        stderr.contains(&format!(
            "no data from the Docker engine at `{}` for 2 s while reading `/data` from `{app}`",
            proxy.address()
        )),
        "{stderr}"
    );
    assert!(proxy.stalled.load(Ordering::SeqCst) > 0);
    let left: Vec<String> = std::fs::read_dir(sb.conf().join("bk"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tar"))
        .collect();
    assert!(left.is_empty(), "no archive, partial or whole: {left:?}");

    // A build whose output stalls (the context is sent, the answer stops).
    let ctx = sb.conf().join("img");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\nRUN echo built > /built\n", base_image()),
    )
    .unwrap();
    let image = format!("{id}/img:1");
    sb.unit(
        &id,
        "build",
        &format!(
            "{id}-b:\n  build: {{path: img, tag: '{image}'}}\n---\n- {id}-b: {{command: build}}\n"
        ),
    );
    let proxy = StallProxy::start("/build?", 0);
    let stderr = fails_in_time(
        &sb,
        &proxy.address(),
        &["run", &format!("{id}/build")],
        false,
    );
    assert!(
        stderr.contains(&format!(
            "no data from the Docker engine at `{}` for 2 s while building `{image}`",
            proxy.address()
        )),
        "{stderr}"
    );
}
