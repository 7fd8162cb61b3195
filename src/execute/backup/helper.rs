//! Helper containers of backups and restores: a helper's `tar` instead of the engine's, and the
//! `find`/`rm` of `clean: true`.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use super::stream::{self, Progress, archive_failed, join_failed};
use crate::backup::pending::OutputError;
use crate::backup::plan::BackupPlan;
use crate::backup::{self, Content, Written, store};
use crate::engine::watchdog::Watchdog;
use crate::execute::run::{bare_spec, helper_image, run_container, temp_name};
use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::output;
use crate::unit::container::MountSpec;

/// Runs `tar` in a helper container: into the archive file itself when it is not compressed
/// (dstart reads it as it grows, for the checksum), else into a FIFO that dstart compresses.
#[allow(clippy::too_many_arguments)]
pub(super) async fn with_helper(
    run: &UnitRun<'_>,
    name: &str,
    image: &str,
    sources: &[String],
    pending: store::Pending,
    making: &backup::Making,
    dir: &Path,
    plan: &BackupPlan,
) -> OrderResult<Written> {
    let direct = pending.temp_path().map(Path::to_path_buf);
    // The FIFO lies in the backup directory under a temporary name: removed when this run
    // ends, and by the next run when this one was killed.
    let fifo = match &direct {
        Some(_) => None,
        None => Some(
            Fifo::make(&dir.join(&plan.fifo_name))
                .map_err(|e| archive_failed(run, name, dir, e))?,
        ),
    };
    let host = match (&direct, &fifo) {
        (Some(file), _) => file.clone(),
        (None, Some(f)) => f.0.clone(),
        (None, None) => unreachable!("a FIFO where the file is not written directly"),
    };
    let mut helper = bare_spec(&temp_name(name, "backup"), image);
    helper.entrypoint = Some(Vec::new());
    let mut cmd: Vec<String> = vec![
        "tar".into(),
        "cf".into(),
        HELPER_TARGET.into(),
        "-C".into(),
        "/".into(),
    ];
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
        container: HELPER_TARGET.into(),
        read_only: false,
    }];
    output::debug(format!("Running tar in a helper container of {image}"));
    let progress = std::sync::Arc::new(Progress::new(&format!("Backing up {name}")));
    let seen = std::sync::Arc::clone(&progress);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let finished = std::sync::Arc::clone(&finished);
        let interrupted = run.rt.interrupt.flag();
        let (file, making) = (host.clone(), making.clone());
        let direct = direct.is_some();
        tokio::task::spawn_blocking(move || {
            if direct {
                let growing =
                    backup::Growing::new(std::fs::File::open(&file)?, finished, interrupted);
                let counted = Counted {
                    inner: growing,
                    progress: seen,
                };
                backup::hash_written(pending, counted)
            } else {
                let fifo = std::fs::File::open(&file)?;
                let counted = Counted {
                    inner: fifo,
                    progress: seen,
                };
                backup::write_archive(pending, &making, Content::Tar(Box::new(counted)))
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
    while fifo.is_some() && !worker.is_finished() {
        use nix::fcntl::OFlag;
        if let Ok(fd) = nix::fcntl::open(
            &host,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK,
            nix::sys::stat::Mode::empty(),
        ) {
            drop(fd);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written = worker.await.map_err(|e| join_failed(&e))?;
    let (code, tail) = ran?;
    // The first error is the cause: a write that failed here (a full disk) makes tar fail
    // with a broken pipe afterwards.
    if let Err(e) = &written {
        if OutputError::of(e).is_some() {
            return written.map_err(|e| archive_failed(run, name, dir, e));
        }
    }
    if code != 0 {
        let text = tail.render();
        if text.contains("No space left on device") || text.contains("Disk quota exceeded") {
            return Err(stream::disk_full(dir));
        }
        return Err(OrderError::failed(format!(
            "tar in the helper container ({image}) failed with exit code {code}{text}; nothing was written under an archive name"
        )));
    }
    written.map_err(|e| archive_failed(run, name, dir, e))
}

/// Where the helper's `tar` writes: the archive file or the FIFO, bind-mounted.
const HELPER_TARGET: &str = "/dstart-backup.tar";

/// A FIFO in the backup directory, removed when dropped.
struct Fifo(std::path::PathBuf);

impl Fifo {
    fn make(path: &Path) -> io::Result<Fifo> {
        let _ = std::fs::remove_file(path);
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| OutputError::wrap(io::Error::from(e)))?;
        Ok(Fifo(path.to_path_buf()))
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
