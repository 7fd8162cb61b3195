//! Helper containers of backups and restores: a helper's `tar` instead of the engine's, and the
//! `find`/`rm` of `clean: true`.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use super::stream::{Progress, archive_failed, join_failed};
use crate::backup::{self, Content, Written, store};
use crate::engine::watchdog::Watchdog;
use crate::execute::run::{bare_spec, helper_image, run_container, temp_name};
use crate::execute::{OrderError, OrderResult, UnitRun, interrupt};
use crate::output;
use crate::unit::container::MountSpec;
use crate::unit::order::Compression;

/// Runs `tar` in a helper container: into the archive file itself when it is not compressed
/// (dstart reads it as it grows, for the checksum), else into a FIFO that dstart compresses.
pub(super) async fn with_helper(
    run: &UnitRun<'_>,
    name: &str,
    image: &str,
    sources: &[String],
    pending: store::Pending,
    compression: Compression,
) -> OrderResult<Written> {
    let direct = pending.temp_path().map(Path::to_path_buf);
    let through_fifo = direct.is_none();
    // Only the FIFO needs a directory (made only then: a killed run leaves it in /tmp). Kept
    // until the helper is done.
    let mut _fifo_dir = None;
    let (host, container) = if let Some(file) = &direct {
        (file.clone(), "/dstart-backup.tar".to_string())
    } else {
        let tmp = tempfile::Builder::new()
            .prefix("dstart-backup-")
            .tempdir()
            .map_err(OrderError::io("creating a temporary directory"))?;
        let fifo = tmp.path().join("archive.tar");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| OrderError::io("creating a FIFO")(io::Error::from(e)))?;
        let host = tmp.path().to_path_buf();
        _fifo_dir = Some(tmp);
        (host, "/dstart-backup".to_string())
    };
    let target = if direct.is_some() {
        container.clone()
    } else {
        format!("{container}/archive.tar")
    };
    let mut helper = bare_spec(&temp_name(name, "backup"), image);
    helper.entrypoint = Some(Vec::new());
    let mut cmd: Vec<String> = vec!["tar".into(), "cf".into(), target, "-C".into(), "/".into()];
    cmd.extend(
        sources
            .iter()
            .map(|s| s.trim_start_matches('/').to_string()),
    );
    helper.command = Some(cmd);
    helper.user = Some("0".into());
    helper.host.volumes_from = vec![format!("{name}:ro")];
    helper.host.network_mode = Some("none".into());
    helper.mounts = vec![MountSpec::Bind {
        host: host.display().to_string(),
        container,
        read_only: false,
    }];
    output::debug(format!("Running tar in a helper container of {image}"));
    let progress = std::sync::Arc::new(Progress::new(&format!("Backing up {name}")));
    let seen = std::sync::Arc::clone(&progress);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let finished = std::sync::Arc::clone(&finished);
        let fifo = host.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(file) = direct {
                let growing =
                    backup::Growing::new(std::fs::File::open(&file)?, finished, interrupt::is_set);
                let counted = Counted {
                    inner: growing,
                    progress: seen,
                };
                backup::hash_written(pending, counted)
            } else {
                let file = std::fs::File::open(fifo.join("archive.tar"))?;
                let counted = Counted {
                    inner: file,
                    progress: seen,
                };
                backup::write_archive(pending, compression, Content::Tar(Box::new(counted)))
            }
        })
    };
    // Should dstart be killed, the watchdog removes the helper: its tar stops writing.
    let watchdog = watch_helper(run, &helper.name);
    let ran = run_container(run, helper, true).await;
    if let Some(w) = watchdog {
        w.done();
    }
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    // Whatever happened to tar, let a reader of the FIFO see its end.
    let fifo = host.join("archive.tar");
    while through_fifo && !worker.is_finished() {
        use nix::fcntl::OFlag;
        if let Ok(fd) = nix::fcntl::open(
            &fifo,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK,
            nix::sys::stat::Mode::empty(),
        ) {
            drop(fd);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written = worker.await.map_err(|e| join_failed(&e))?;
    let (code, tail) = ran?;
    if code != 0 {
        return Err(OrderError::failed(format!(
            "tar in the helper container ({image}) failed with exit code {code}{}",
            tail.render()
        )));
    }
    written.map_err(|e| archive_failed(name, e))
}

/// A watchdog process that removes the helper container `name` if dstart dies while it runs;
/// none (noted at `-d`) if it cannot be started.
fn watch_helper(run: &UnitRun<'_>, name: &str) -> Option<Watchdog> {
    let socket = run.engine().address().strip_prefix("unix://")?;
    match Watchdog::start(Path::new(socket), name) {
        Ok(w) => Some(w),
        Err(e) => {
            output::debug(format!(
                "Could not start the watchdog of the helper container {name} ({e}): should dstart be killed, the helper runs on until its tar ends"
            ));
            None
        }
    }
}

pub(super) struct Counted<R> {
    pub(super) inner: R,
    pub(super) progress: std::sync::Arc<Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n);
        Ok(n)
    }
}

/// A throw-away container of the helper image (`HELPER_IMAGE`, else the container's own) that
/// runs `cmd` as root without a network. Returns it and its image.
fn tool_helper(
    run: &UnitRun<'_>,
    name: &str,
    what: &str,
    cmd: &[&str],
) -> OrderResult<(crate::unit::container::ContainerSpec, String)> {
    let image = helper_image(run, run.spec(name)?)?;
    let mut helper = bare_spec(&temp_name(name, what), &image);
    helper.entrypoint = Some(Vec::new());
    helper.command = Some(cmd.iter().map(|c| (*c).to_string()).collect());
    helper.user = Some("0".into());
    helper.host.network_mode = Some("none".into());
    Ok((helper, image))
}

/// Checks, before anything is stopped or written, that the helper image of `clean: true` can
/// run `find` and `rm`: an image without them (one made `FROM scratch`) fails the restore here
/// rather than after the stop.
pub(super) async fn check_clean_tools(run: &UnitRun<'_>, name: &str) -> OrderResult {
    // `find` runs `rm` once, on a path that does not exist: both must be there to exit 0.
    let (probe, image) = tool_helper(
        run,
        name,
        "probe",
        &[
            "find",
            "/",
            "-maxdepth",
            "0",
            "-exec",
            "rm",
            "-f",
            "--",
            "/.dstart-probe-nonexistent",
            ";",
        ],
    )?;
    let why = match run_container(run, probe, true).await {
        Ok((0, _)) => return Ok(()),
        Ok((code, tail)) => format!("exit code {code}{}", tail.render()),
        Err(OrderError::Interrupted) => return Err(OrderError::Interrupted),
        Err(e) => e.to_string(),
    };
    let hint = if run
        .unit
        .environment
        .get_str("HELPER_IMAGE")
        .is_some_and(|h| !h.is_empty())
    {
        format!("set HELPER_IMAGE to an image that has `find` and `rm` (`{image}` has not)")
    } else {
        "set HELPER_IMAGE in an environment file to an image that has `find` and `rm`, a busybox image for one".to_string()
    };
    Err(OrderError::hinted(
        format!(
            "`clean: true` empties the volumes with `find` and `rm` in a container of `{image}`, which cannot run them ({why}); nothing was restored"
        ),
        hint,
    ))
}

/// Empties the volume roots (`clean: true`) with `find … -exec rm -rf` in a helper container.
pub(super) async fn empty_volumes(run: &UnitRun<'_>, name: &str, roots: &[String]) -> OrderResult {
    let paths: Vec<String> = roots.iter().map(|r| format!("/{r}")).collect();
    let mut cmd = vec!["find"];
    cmd.extend(paths.iter().map(String::as_str));
    // `-delete` is missing from busybox's find; `-exec rm -rf {} +` is everywhere.
    cmd.extend([
        "-mindepth",
        "1",
        "-maxdepth",
        "1",
        "-exec",
        "rm",
        "-rf",
        "{}",
        "+",
    ]);
    let (mut helper, image) = tool_helper(run, name, "clean", &cmd)?;
    helper.host.volumes_from = vec![name.to_string()];
    output::info(format!(
        "Emptying {} of container {name} before the restore",
        paths.join(", ")
    ));
    let (code, tail) = run_container(run, helper, true).await?;
    if code != 0 {
        return Err(OrderError::hinted(
            format!(
                "emptying the volumes of {name} failed with exit code {code} (`clean: true` runs `find` and `rm` in `{image}`){}",
                tail.render()
            ),
            "set HELPER_IMAGE to an image that has `find` and `rm`",
        ));
    }
    Ok(())
}
