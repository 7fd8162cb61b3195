//! `backup` and `restore` (ORIGINAL §3.1, SPEC "Backup and restore (cron-grade)").
//!
//! A backup streams each source path through the engine's archive endpoint (no helper image,
//! no tar in the image, stopped containers too) into a new archive file that only gets its
//! name once it is complete and on disk; with `HELPER_IMAGE` set, a helper container's `tar`
//! writes the same tar into a FIFO instead, because the engine's own tar is slower. A restore
//! reads the whole archive first (checksum, damage, unsafe members) and only then unpacks it
//! through the archive endpoint.

mod helper;
mod restore;
mod stream;

use helper::with_helper;
pub use restore::restore;
use stream::through_engine;

use std::io::{self};
use std::path::Path;
use std::time::Duration;

use crate::backup::{lock, store};
use crate::engine::ContainerInfo;
use crate::execute::lifecycle::own_volume_mounts;
use crate::execute::{
    OrderError, OrderResult, UnitRun, interrupt, network_name, resolve_host_path,
};
use crate::output;
use crate::unit::order::{BackupArgs, Compression, Order};

/// Default seconds to wait for another run's lock.
const LOCK_TIMEOUT_SECS: f64 = 600.0;
/// Seconds a container gets to stop for a consistent backup.
const STOP_TIMEOUT: u32 = 10;

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
        free_stamped_name(&dir, base, compression).await?
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
    match lock::acquire(&path, &about, timeout, interrupt::is_set).await {
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
    dir: &Path,
    base: &str,
    compression: Compression,
) -> OrderResult<String> {
    loop {
        let name = store::stamped_name(base, &store::stamp(chrono::Utc::now()), compression);
        if std::fs::symlink_metadata(dir.join(&name)).is_err() {
            return Ok(name);
        }
        interrupt_or_sleep(Duration::from_millis(200)).await?;
    }
}

async fn interrupt_or_sleep(d: Duration) -> OrderResult {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        () = interrupt::wait() => Err(OrderError::Interrupted),
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
