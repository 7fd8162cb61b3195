//! `backup` and `restore` (ORIGINAL §3.1, SPEC "Backup and restore (cron-grade)").
//!
//! A backup streams each source path through the engine's archive endpoint (no helper image,
//! no tar in the image, stopped containers too) into a new archive file that only gets its
//! name once it is complete and on disk; with `HELPER_IMAGE` set, a helper container's `tar`
//! writes the same tar into a FIFO instead, because the engine's own tar is slower. A restore
//! reads the whole archive first (checksum, damage, unsafe members) and only then unpacks it
//! through the archive endpoint.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::backup::{self, ChannelReader, Chunk, Content, Rejected, Written, archive, lock, store};
use crate::engine::archive::UploadError;
use crate::engine::watchdog::Watchdog;
use crate::engine::{ContainerInfo, EngineError};
use crate::execute::lifecycle::own_volume_mounts;
use crate::execute::run::{bare_spec, helper_image, run_container, temp_name};
use crate::execute::{OrderError, OrderResult, UnitRun, network_name, resolve_host_path};
use crate::output;
use crate::unit::container::MountSpec;
use crate::unit::order::{BackupArgs, Compression, Order, RestoreArgs};

/// Default seconds to wait for another run's lock.
const LOCK_TIMEOUT_SECS: f64 = 600.0;
/// Seconds a container gets to stop for a consistent backup.
const STOP_TIMEOUT: u32 = 10;

/// Bytes of the engine's stream handed to the archive writer at once.
const BATCH: usize = 256 << 10;

/// `backup`.
pub async fn backup(run: &UnitRun<'_>, order: &Order, args: &BackupArgs) -> OrderResult {
    let name = order.container.as_str();
    let spec = run.spec(name)?;
    let info = existing(run, name).await?;
    let sources = match &args.source {
        Some(s) => checked_sources(&info, &s.to_vec())?,
        None => default_sources(run, order, &info).await?,
    };
    if sources.is_empty() {
        if order.generated {
            output::debug(format!(
                "No volumes to back up in container {name} (skipped)"
            ));
            return Ok(());
        }
        return Err(OrderError::failed(format!(
            "No volumes to backup found in container {name}"
        )));
    }
    let dir = resolve_host_path(
        run.rt,
        Some(spec),
        args.backup_dir.as_deref().unwrap_or("."),
    );
    store::ensure_dir(&dir).map_err(OrderError::io(format!(
        "creating the backup directory {}",
        dir.display()
    )))?;
    let compression = args.compression.unwrap_or(Compression::Gzip);
    let base = args.backup_name.as_deref().unwrap_or("backup");
    hold_lock(run, &dir, args.lock_timeout).await?;
    let file_name = if args.timestamp {
        free_stamped_name(run, &dir, base, compression).await?
    } else {
        // `overwrite` (ORIGINAL §3.1 step 3) is about the name, whatever its compression.
        let found = store::fixed_archives(&dir, base);
        if let (Some(found), false) = (found.first(), args.overwrite) {
            return Err(OrderError::hinted(
                format!(
                    "the target `{found}` exists already in directory `{}`",
                    dir.display()
                ),
                "add `overwrite: true` to the order to replace it",
            ));
        }
        store::fixed_name(base, compression)
    };
    let target = dir.join(&file_name);
    output::info(format!(
        "Backup of container {name}: {} -> {}",
        sources.join(", "),
        target.display()
    ));

    let helper = helper_for_backup(run);
    let stop = (args.stop && info.running).then(|| args.timeout.unwrap_or(STOP_TIMEOUT));
    let written = while_stopped(
        run,
        name,
        stop,
        "backup",
        Box::pin(async {
            // A helper's tar writes an uncompressed archive straight into its file, so that one
            // needs a name the container can be given.
            let pending = if helper.is_some() && compression == Compression::None {
                store::Pending::create_named(&dir, &file_name)
            } else {
                store::Pending::create(&dir, &file_name)
            }
            .map_err(OrderError::io(format!(
                "creating a temporary file in {}",
                dir.display()
            )))?;
            match &helper {
                Some(image) => with_helper(run, name, image, &sources, pending, compression).await,
                None => through_engine(run, name, &sources, pending, compression).await,
            }
        }),
    )
    .await?;

    let keep = args.keep;
    let (link, stamped) = (store::fixed_name(base, compression), args.timestamp);
    let base_name = base.to_string();
    let dir_for_commit = dir.clone();
    let file_for_commit = file_name.clone();
    let sha = written.sha256.clone();
    let (path, pruned, linked) = tokio::task::spawn_blocking(move || {
        let path = store::commit_archive(written.pending, &file_for_commit, &sha)?;
        let linked = if stamped {
            store::point_link(&dir_for_commit, &link, &file_for_commit)?
        } else {
            true
        };
        let pruned = match keep {
            Some(k) => store::prune(&dir_for_commit, &base_name, k as usize)?,
            // `overwrite`: the new archive replaces those of the name in other compressions.
            None if !stamped => {
                store::remove_fixed_except(&dir_for_commit, &base_name, &file_for_commit)?
            }
            None => Vec::new(),
        };
        Ok::<_, io::Error>((path, pruned, linked))
    })
    .await
    .map_err(|e| OrderError::failed(format!("writing the archive stopped: {e}")))?
    .map_err(OrderError::io(format!("finishing {}", target.display())))?;
    if !linked {
        output::warn(
            "backup",
            format!(
                "{} is an archive of its own, not a link: it was left alone and does not point at the newest backup",
                dir.join(store::fixed_name(base, compression)).display()
            ),
        );
    }
    for p in pruned {
        output::info(format!("Removed the old backup {p}"));
    }
    output::info(format!(
        "Successfully backed up container {name} to {} ({} bytes, sha256 {})",
        path.display(),
        written.size,
        written.sha256
    ));
    Ok(())
}

/// `restore`.
pub async fn restore(run: &UnitRun<'_>, order: &Order, args: &RestoreArgs) -> OrderResult {
    let name = order.container.as_str();
    let spec = run.spec(name)?;
    let info = existing(run, name).await?;
    if order.generated && default_sources(run, order, &info).await?.is_empty() {
        output::debug(format!(
            "No volumes to restore in container {name} (skipped)"
        ));
        return Ok(());
    }
    let dir = resolve_host_path(
        run.rt,
        Some(spec),
        args.restore_dir.as_deref().unwrap_or("."),
    );
    let base = args.restore_name.as_deref().unwrap_or("backup");
    if !dir.is_dir() {
        return Err(OrderError::failed(format!(
            "the backup directory {} does not exist",
            dir.display()
        )));
    }
    hold_lock(run, &dir, args.lock_timeout).await?;
    let path = match &args.archive {
        Some(a) => {
            let p = resolve_host_path(run.rt, Some(spec), a);
            let p = if Path::new(a).is_absolute() || a.starts_with("${") || a.starts_with('~') {
                p
            } else {
                dir.join(a)
            };
            if !p.is_file() {
                return Err(OrderError::failed(format!(
                    "the archive {} does not exist",
                    p.display()
                )));
            }
            p
        }
        None => store::newest(&dir, base)
            .map_err(OrderError::io(format!("reading {}", dir.display())))?
            .map(|f| f.path)
            .ok_or_else(|| {
                OrderError::failed(format!(
                    "no archive named {base} in {} (looked for {base}.tar.gz, {base}.tar.zst, {base}.tar and {base}-<timestamp>.…)",
                    dir.display()
                ))
            })?,
    };
    output::info(format!(
        "Restoring container {name} from {}",
        path.display()
    ));
    let sum_path = store::checksum_path(&path);
    let expected = store::read_checksum(&path)
        .map_err(OrderError::io(format!("reading {}", sum_path.display())))?
        .ok_or_else(|| missing_checksum(&path, &sum_path))?;
    // Opened once: what is checked is what is sent, whatever happens to the name meanwhile.
    let file = std::fs::File::open(&path)
        .map_err(OrderError::io(format!("opening {}", path.display())))?;
    let volumes: Vec<String> = info.mounts.iter().map(|m| m.destination.clone()).collect();
    let verified = {
        let expected = expected.clone();
        let mut file = file;
        tokio::task::spawn_blocking(move || {
            let verified = backup::verify(&mut file, Some(&expected), &volumes);
            (file, verified)
        })
    };
    let (file, verified) = run
        .rt
        .interrupt
        .race(verified)
        .await?
        .map_err(|e| OrderError::failed(format!("checking the archive stopped: {e}")))?;
    let shown = path.display();
    let (compression, checked) = verified.map_err(|r| {
        OrderError::failed(match r {
            Rejected::Io(e) => format!("reading {shown}: {e}"),
            Rejected::Checksum { expected, actual } => format!(
                "the archive {shown} is damaged or was changed: its checksum is {actual}, its .sha256 file says {expected}; nothing was restored"
            ),
            Rejected::Content(archive::Refusal::Damaged(e)) => {
                format!("the archive {shown} is damaged ({e}); nothing was restored")
            }
            Rejected::Content(refusal @ archive::Refusal::Unsafe { .. }) => {
                format!("the archive {shown} is refused, {refusal}; nothing was restored")
            }
        })
    })?;
    let read_only: Vec<&str> = checked
        .roots
        .iter()
        .filter(|root| {
            info.mounts
                .iter()
                .any(|m| !m.read_write && m.destination.trim_matches('/') == root.as_str())
        })
        .map(String::as_str)
        .collect();
    if !read_only.is_empty() {
        return Err(OrderError::failed(format!(
            "the archive {shown} writes into /{}, mounted read-only in container {name}; restore it into the container that mounts it writable. Nothing was restored",
            read_only.join(", /")
        )));
    }
    output::debug(format!(
        "{shown} checked: {} members, {} bytes of data",
        checked.counts.entries, checked.counts.bytes
    ));
    if checked.counts.entries == 0 {
        output::warn("restore", format!("{shown} is empty: nothing to restore"));
        return Ok(());
    }

    if args.clean {
        check_clean_tools(run, name).await?;
    }
    let stop = (args.stop && info.running).then(|| args.timeout.unwrap_or(STOP_TIMEOUT));
    while_stopped(
        run,
        name,
        stop,
        "restore",
        Box::pin(async {
            if args.clean {
                empty_volumes(run, name, &checked.roots).await?;
            }
            upload(run, name, &path, file, compression, &expected).await
        }),
    )
    .await?;
    output::info(format!(
        "Successfully restored container {name} from {shown} ({} members into {})",
        checked.counts.entries,
        checked
            .roots
            .iter()
            .map(|r| format!("/{r}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// The refusal of an archive without its `.sha256`: nothing tells it from a damaged or changed
/// copy.
fn missing_checksum(archive: &Path, sum: &Path) -> OrderError {
    let file = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let dir = archive.parent().unwrap_or(Path::new("."));
    OrderError::hinted(
        format!(
            "the archive `{}` has no checksum file `{}`, so a damaged or changed archive cannot be told from a good one; nothing was restored",
            archive.display(),
            sum.display()
        ),
        format!(
            "if the archive is trusted, write its checksum: `cd {} && sha256sum {} > {}`",
            dir.display(),
            file(archive),
            file(sum)
        ),
    )
}

/// Runs `work` with container `name` stopped when `stop` (the stop timeout) is set (the caller
/// sets it only for a running container), and starts the container again afterwards, whatever
/// `work` returned: the one place between a stop and its start, so that no early return can
/// skip the start.
async fn while_stopped<T>(
    run: &UnitRun<'_>,
    name: &str,
    stop: Option<u32>,
    what: &str,
    work: impl std::future::Future<Output = OrderResult<T>>,
) -> OrderResult<T> {
    let Some(timeout) = stop else {
        return work.await;
    };
    // A stop that failed half-way may have stopped the container all the same: it is started
    // again in any case (a start of a running container is a no-op).
    let result = match run.engine().stop_container(name, timeout).await {
        Ok(()) => {
            output::info(format!("Stopped container {name} for its {what}"));
            work.await
        }
        Err(e) => Err(e.into()),
    };
    match run.engine().start_container(name).await {
        Ok(()) => {
            output::info(format!("Started container {name} again"));
            result
        }
        Err(e) if result.is_ok() => Err(e.into()),
        Err(e) => {
            output::error(what, format!("could not start container {name} again: {e}"));
            result
        }
    }
}

/// What a backup without `source` archives: the container's own volumes (not those shared in
/// through `volumes_from`). A generated backup or restore takes only volumes mounted
/// read-write, and a named volume only in the first container of the command that mounts it, so
/// that each volume has one archive, restored where it can be written.
async fn default_sources(
    run: &UnitRun<'_>,
    order: &Order,
    info: &ContainerInfo,
) -> OrderResult<Vec<String>> {
    let mounts = own_volume_mounts(run, info).await?;
    if !order.generated {
        return Ok(mounts.into_iter().map(|m| m.destination).collect());
    }
    let mut taken = run
        .generated_volumes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut sources = Vec::new();
    for m in mounts {
        if !m.read_write {
            output::debug(format!(
                "Volume {} of container {} is mounted read-only: left to the container that writes it",
                m.destination, info.name
            ));
            continue;
        }
        if let Some(n) = &m.name
            && !m.is_anonymous_volume()
            && !taken.insert(n.clone())
        {
            output::debug(format!(
                "Volume {n} of container {} was taken by an earlier container of this command",
                info.name
            ));
            continue;
        }
        sources.push(m.destination);
    }
    Ok(sources)
}

async fn existing(run: &UnitRun<'_>, name: &str) -> OrderResult<ContainerInfo> {
    run.engine().container(name).await?.ok_or_else(|| {
        OrderError::failed(format!(
            "the container {name} does not exist (create or start the unit first)"
        ))
    })
}

/// `source` paths, normalized; each must lie in a volume or bind of the container.
fn checked_sources(info: &ContainerInfo, given: &[String]) -> OrderResult<Vec<String>> {
    given
        .iter()
        .map(|s| {
            let trimmed = format!("/{}", s.trim_matches('/'));
            if !s.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
                return Err(OrderError::failed(format!(
                    "the source `{s}` must be an absolute path in the container, without `..`"
                )));
            }
            let inside = info.mounts.iter().any(|m| {
                let d = m.destination.trim_end_matches('/');
                trimmed == d || trimmed.starts_with(&format!("{d}/"))
            });
            if !inside {
                return Err(OrderError::failed(format!(
                    "the source `{s}` is not inside a volume of container {}: backups hold volume data",
                    info.name
                )));
            }
            Ok(trimmed)
        })
        .collect()
}

/// Takes the unit's lock on `dir` once for the whole run.
async fn hold_lock(run: &UnitRun<'_>, dir: &Path, timeout: Option<f64>) -> OrderResult {
    // `.dstart-<unit>.lock`, with the unit spelt as in its network's name.
    let path = dir.join(format!(".{}.lock", network_name(&run.naming.unit_label)));
    let mut held = run.backup_locks.lock().await;
    if held.iter().any(|l| l.path == path) {
        return Ok(());
    }
    let about = lock::describe_self(&format!(
        "{}/{}",
        run.unit.command.unit, run.unit.command.command
    ));
    let timeout = Duration::from_secs_f64(timeout.unwrap_or(LOCK_TIMEOUT_SECS).max(0.0));
    match lock::acquire(&path, &about, timeout, run.rt.interrupt.flag()).await {
        Ok(l) => {
            held.push(l);
            remove_stale_temporaries(dir);
            Ok(())
        }
        Err(lock::LockError::Interrupted) => Err(OrderError::Interrupted),
        Err(lock::LockError::Io(e)) => Err(OrderError::Io {
            context: format!("taking the lock {}", path.display()),
            source: e,
        }),
        Err(lock::LockError::Busy { holder, waited }) => Err(OrderError::failed(format!(
            "another run holds the lock {} ({}); gave up after {} s (lock_timeout)",
            path.display(),
            if holder.is_empty() {
                "unknown holder".into()
            } else {
                holder
            },
            waited.as_secs()
        ))),
    }
}

/// Removes the temporary files that killed runs left in `dir` (an unnamed file goes with its
/// process; a named one, which a helper container writes into, stays). Called with the lock
/// held, so no other run of the unit writes there meanwhile.
fn remove_stale_temporaries(dir: &Path) {
    match store::remove_stale_temporaries(dir) {
        Ok(removed) => {
            for r in removed {
                output::info(format!(
                    "Removed {r}, left behind in {} by a run that was killed",
                    dir.display()
                ));
            }
        }
        Err(e) => output::warn(
            "backup",
            format!(
                "could not look for stale temporary files in {}: {e}",
                dir.display()
            ),
        ),
    }
}

/// `<name>-<now>.<ext>`, waiting for the next second if a backup of this second exists.
async fn free_stamped_name(
    run: &UnitRun<'_>,
    dir: &Path,
    base: &str,
    compression: Compression,
) -> OrderResult<String> {
    loop {
        let name = store::stamped_name(base, &store::stamp(chrono::Utc::now()), compression);
        if std::fs::symlink_metadata(dir.join(&name)).is_err() {
            return Ok(name);
        }
        run.rt.interrupt.sleep(Duration::from_millis(200)).await?;
    }
}

/// `HELPER_IMAGE`, when set and the engine runs on this host (the helper writes into a FIFO
/// here).
fn helper_for_backup(run: &UnitRun<'_>) -> Option<String> {
    let image = run
        .unit
        .environment
        .get_str("HELPER_IMAGE")
        .filter(|s| !s.is_empty())?;
    if run.engine().address().starts_with("unix://") {
        Some(image)
    } else {
        output::debug(format!(
            "HELPER_IMAGE is set, but the engine at {} is not on this host: backing up through the archive endpoint",
            run.engine().address()
        ));
        None
    }
}

/// Bytes and rate on a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(what: &str) -> Progress {
        Progress(output::show_progress().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg}: {bytes} ({bytes_per_sec}, {elapsed})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        }))
    }

    fn add(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(n as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn join_failed(e: &tokio::task::JoinError) -> OrderError {
    OrderError::failed(format!("writing the archive stopped: {e}"))
}

/// Streams the sources through the engine's archive endpoint into `pending`: read on the
/// writer's thread where the engine is on a unix socket, else through the async client.
async fn through_engine(
    run: &UnitRun<'_>,
    name: &str,
    sources: &[String],
    pending: store::Pending,
    compression: Compression,
) -> OrderResult<Written> {
    let progress = std::sync::Arc::new(Progress::new(&format!("Backing up {name}")));
    if run.engine().address().starts_with("unix://") {
        let engine = run.engine().clone();
        let interrupt = run.rt.interrupt.clone();
        let (container, paths) = (name.to_string(), sources.to_vec());
        let seen = std::sync::Arc::clone(&progress);
        let opened = paths.into_iter().filter_map(move |path| {
            let reader = engine.download_blocking(&container, &path, interrupt.flag())?;
            Some(match reader {
                Ok(inner) => {
                    let counted: Box<dyn Read + Send> = Box::new(Counted {
                        inner,
                        progress: std::sync::Arc::clone(&seen),
                    });
                    Ok((archive::member_prefix(&path), counted))
                }
                Err(e) => Err(io::Error::other(e)),
            })
        });
        let worker = tokio::task::spawn_blocking(move || {
            backup::write_archive(pending, compression, Content::Engine(Box::new(opened)))
        });
        // The worker's reads notice an interrupt within a second and end it.
        let written = worker.await.map_err(|e| join_failed(&e))?;
        return written.map_err(|e| archive_failed(run, name, e));
    }
    let (sources_tx, sources_rx) = std::sync::mpsc::channel::<(String, ChannelReader)>();
    let worker = tokio::task::spawn_blocking(move || {
        let opened = sources_rx.into_iter().map(|(prefix, reader)| {
            let reader: Box<dyn Read + Send> = Box::new(reader);
            Ok((prefix, reader))
        });
        backup::write_archive(pending, compression, Content::Engine(Box::new(opened)))
    });
    let feed = async {
        for source in sources {
            let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(8);
            if sources_tx
                .send((archive::member_prefix(source), ChannelReader::new(rx)))
                .is_err()
            {
                // The writer stopped; its error says why.
                return Ok(());
            }
            let mut stream = run.engine().download(name, source);
            // The engine's chunks are small (16 KiB and less): handing over batches of them
            // wakes the writer thread a few times per MiB instead of a hundred.
            let mut batch = BytesMut::new();
            loop {
                let ready = match stream.next().await {
                    Some(Ok(bytes)) => {
                        progress.add(bytes.len());
                        if batch.is_empty() && bytes.len() >= BATCH {
                            bytes
                        } else {
                            if batch.is_empty() {
                                batch.reserve(BATCH);
                            }
                            batch.extend_from_slice(&bytes);
                            if batch.len() < BATCH {
                                continue;
                            }
                            batch.split().freeze()
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                        return Err(OrderError::from(e));
                    }
                    None if batch.is_empty() => break,
                    None => batch.split().freeze(),
                };
                if tx.send(Ok(ready)).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok::<(), OrderError>(())
    };
    let fed = run.rt.interrupt.race(feed).await.and_then(|r| r);
    drop(sources_tx);
    let written = worker.await.map_err(|e| join_failed(&e))?;
    fed?;
    written.map_err(|e| archive_failed(run, name, e))
}

/// The error of a backup's writer: the engine's own error where it came from the engine.
fn archive_failed(run: &UnitRun<'_>, name: &str, e: io::Error) -> OrderError {
    if run.rt.interrupt.is_set() {
        return OrderError::Interrupted;
    }
    if e.get_ref()
        .is_some_and(<dyn std::error::Error + Send + Sync>::is::<EngineError>)
    {
        if let Some(Ok(engine)) = e
            .into_inner()
            .map(<dyn std::error::Error + Send + Sync>::downcast::<EngineError>)
        {
            return OrderError::Engine(*engine);
        }
        return OrderError::failed(format!("writing the archive of {name} failed"));
    }
    OrderError::io(format!("writing the archive of {name}"))(e)
}

/// Runs `tar` in a helper container: into the archive file itself when it is not compressed
/// (dstart reads it as it grows, for the checksum), else into a FIFO that dstart compresses.
async fn with_helper(
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
        let interrupted = run.rt.interrupt.flag();
        let fifo = host.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(file) = direct {
                let growing =
                    backup::Growing::new(std::fs::File::open(&file)?, finished, interrupted);
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
    written.map_err(|e| archive_failed(run, name, e))
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

struct Counted<R> {
    inner: R,
    progress: std::sync::Arc<Progress>,
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
async fn check_clean_tools(run: &UnitRun<'_>, name: &str) -> OrderResult {
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
async fn empty_volumes(run: &UnitRun<'_>, name: &str, roots: &[String]) -> OrderResult {
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

/// Sends the archive to the engine's archive endpoint as plain tar, unpacked here on a thread of
/// its own: engines before 23.0 do not read zstd, and the engine's gzip reader is slower than
/// ours (a PUT of plain tar takes two thirds of the time of the same tar gzipped, see
/// docs/performance.md), so the two cores share the work. On a unix socket the tar is sent
/// with a blocking request from the thread that reads it ([`crate::engine::archive`]).
///
/// `file` is the archive as it was verified; it is hashed again as it is sent, and a checksum
/// that differs from `expected` fails the restore.
async fn upload(
    run: &UnitRun<'_>,
    name: &str,
    path: &Path,
    file: std::fs::File,
    compression: Compression,
    expected: &str,
) -> OrderResult {
    let progress = std::sync::Arc::new(Progress::new(&format!("Restoring {name}")));
    let (raw, digest) =
        Rehashed::new(file).map_err(OrderError::io(format!("reading {}", path.display())))?;
    let sent = if run.engine().address().starts_with("unix://") {
        let engine = run.engine().clone();
        let container = name.to_string();
        let seen = std::sync::Arc::clone(&progress);
        let interrupted = run.rt.interrupt.flag();
        let sent = tokio::task::spawn_blocking(move || {
            let tar = backup::compress::decoder(compression, raw).map_err(UploadError::Read)?;
            let mut body = Counted {
                inner: backup::ReadAhead::new(tar),
                progress: seen,
            };
            engine
                .upload_blocking(&container, "/", &mut body, interrupted)
                .unwrap_or_else(|| Err(UploadError::Read(io::Error::other("not on a unix socket"))))
        });
        // The sender notices an interrupt within a second and stops.
        let sent = sent
            .await
            .map_err(|e| OrderError::failed(format!("restoring {name} stopped: {e}")))?;
        if run.rt.interrupt.is_set() {
            output::error(
                "restore",
                format!("interrupted: the restore of {name} is incomplete"),
            );
            return Err(OrderError::Interrupted);
        }
        match sent {
            Ok(()) => Ok(()),
            Err(UploadError::Engine(e)) => Err(OrderError::Engine(e)),
            Err(UploadError::Read(e)) => {
                Err(OrderError::io(format!("reading {}", path.display()))(e))
            }
        }
    } else {
        upload_async(run, name, path, raw, compression, &progress).await
    };
    sent?;
    // The digest arrives when the reader reached the end of the file, before the last bytes
    // were sent.
    let actual = digest
        .recv()
        .map_err(|_| {
            OrderError::failed(format!(
                "the archive {} was not read to its end while it was sent; the container may hold part of it",
                path.display()
            ))
        })?
        .map_err(OrderError::io(format!("reading {}", path.display())))?;
    if actual != expected {
        return Err(OrderError::hinted(
            format!(
                "the archive {} changed while it was restored: its checksum is now {actual}, its .sha256 file says {expected}; the container may hold part of it",
                path.display()
            ),
            "restore again from an archive that nothing writes into",
        ));
    }
    Ok(())
}

/// [`upload`] through the async client (an engine on tcp).
async fn upload_async(
    run: &UnitRun<'_>,
    name: &str,
    path: &Path,
    raw: Rehashed,
    compression: Compression,
    progress: &std::sync::Arc<Progress>,
) -> OrderResult {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let reader = tokio::task::spawn_blocking(move || {
        let mut input = backup::compress::decoder(compression, raw)?;
        let mut buf = vec![0u8; 1 << 18];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                return Err(io::Error::other("the engine stopped reading"));
            }
        }
    });
    let seen = std::sync::Arc::clone(progress);
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
            .inspect(move |b| seen.add(b.len()));
    let Ok(sent) = run
        .rt
        .interrupt
        .race(run.engine().upload(name, "/", body))
        .await
    else {
        output::error(
            "restore",
            format!("interrupted: the restore of {name} is incomplete"),
        );
        return Err(OrderError::Interrupted);
    };
    let read = reader
        .await
        .map_err(|e| OrderError::failed(format!("reading the archive stopped: {e}")))?;
    sent?;
    read.map_err(OrderError::io(format!("reading {}", path.display())))
}

/// The archive file of a restore, hashed again as it is read: at its end, the digest goes to
/// the receiver [`Rehashed::new`] returns.
struct Rehashed {
    inner: Option<backup::HashingReader<std::fs::File>>,
    digest: std::sync::mpsc::Sender<io::Result<String>>,
}

impl Rehashed {
    /// Reads `file` from its start.
    fn new(
        mut file: std::fs::File,
    ) -> io::Result<(Rehashed, std::sync::mpsc::Receiver<io::Result<String>>)> {
        use std::io::Seek;
        file.rewind()?;
        let (tx, rx) = std::sync::mpsc::channel();
        Ok((
            Rehashed {
                inner: Some(backup::HashingReader::new(file)),
                digest: tx,
            },
            rx,
        ))
    }
}

impl Read for Rehashed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(done) = self.inner.take() {
                let _ = self.digest.send(done.finish());
            }
        }
        Ok(n)
    }
}
