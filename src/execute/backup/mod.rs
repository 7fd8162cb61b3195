//! `backup` and `restore` (ORIGINAL §3.1, SPEC "Backup and restore (cron-grade)").
//!
//! A backup streams each source path through the engine's archive endpoint (no helper image,
//! no tar in the image, stopped containers too) into a new archive file that only gets its
//! name once it is complete and on disk; with `HELPER_IMAGE` set, a helper container's `tar`
//! writes the same tar into a FIFO instead, because the engine's own tar is slower. A restore
//! reads the whole archive first (checksum, damage, unsafe members) and only then unpacks it
//! through the archive endpoint.

mod helper;
mod hooks;
mod restore;
mod stream;

use helper::with_helper;
pub use restore::restore;
use stream::through_engine;

use std::io::{self};
use std::path::Path;

use crate::backup::plan::{BackupPlan, PlanArgs, PlanError, backup_plan};
use crate::backup::store::Format;
use crate::backup::{self, archive, lock, store};
use crate::engine::ContainerInfo;
use crate::execute::lifecycle::own_volume_mounts;
use crate::execute::lifecycle::{previous_run_end, wait_ready};
use crate::execute::{OrderError, OrderResult, UnitRun, resolve_host_path};
use crate::output;
use crate::unit::order::Ready;
use crate::unit::order::{BackupArgs, Compression, Order};
use crate::unit::values::Seconds;

/// Default seconds to wait for another run's lock.
const LOCK_TIMEOUT: Seconds = Seconds::from_secs(600);

/// `backup`: locks, then decides ([`backup_plan`]), then carries the plan out.
pub async fn backup(run: &UnitRun<'_>, order: &Order, args: &BackupArgs) -> OrderResult {
    let name = order.container.as_str();
    let spec = run.spec(name)?;
    let dir = resolve_host_path(
        run.rt,
        Some(spec),
        args.backup_dir.as_deref().unwrap_or("."),
    );
    let compression = args.compression.unwrap_or(Compression::Gzip);
    let base = args.backup_name.as_deref().unwrap_or("backup");
    // Checked before anything is locked, stopped or written.
    let recipients = recipients(run, args)?;
    let exclude = archive::Exclude::new(&args.exclude).map_err(OrderError::failed)?;
    store::ensure_dir(&dir).map_err(OrderError::io(format!(
        "creating the backup directory {}",
        dir.display()
    )))?;
    // The locks come before the first engine call: while the engine streams an archive of a
    // container, it answers no inspect of it, and a second run must wait here, within its
    // `lock_timeout`, not on the engine.
    hold_lock(run, &dir, args.lock_timeout).await?;
    let _name_lock = name_lock(run, &dir, base, args.lock_timeout).await?;
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
    let format = Format {
        compression,
        encrypted: recipients.is_some(),
    };
    // Moved into the making below.
    let (recipients, exclude) = (recipients, exclude);
    let existing_archives = store::list_all(&dir, base)
        .map_err(OrderError::io(format!("reading {}", dir.display())))?;
    let plan = backup_plan(
        &PlanArgs {
            name: base,
            format,
            timestamp: args.timestamp,
            overwrite: args.overwrite,
            keep: args.keep.as_ref(),
        },
        &existing_archives,
        chrono::Utc::now(),
        std::process::id(),
    )
    .map_err(|e| match e {
        PlanError::Exists { file } => OrderError::hinted(
            format!(
                "the target `{file}` exists already in directory `{}`",
                dir.display()
            ),
            "add `overwrite: true` to the order to replace it",
        ),
    })?;
    if let Some(at) = plan.not_before {
        // An archive of this second exists: this one is stamped with the next free second,
        // which must have come before the backup begins.
        let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        run.rt.interrupt.sleep(wait).await?;
    }
    crate::faults::point("backup:planned");
    let target = dir.join(&plan.file_name);
    output::info(format!(
        "Backup of container {name}: {} -> {}",
        sources.join(", "),
        target.display()
    ));

    // `after` runs whatever happened since `before`; the first error is the one reported.
    let made = async {
        if let Some(hook) = &args.before {
            hooks::run_hook(run, name, "backup", "before", hook).await?;
        }
        let making = backup::Making {
            compression,
            encrypt: recipients.map(std::sync::Arc::new),
            exclude: exclude.map(std::sync::Arc::new),
        };
        let written = write(run, name, &info, args, &dir, &plan, &sources, &making).await?;
        finish(run, name, &dir, &plan, written).await
    }
    .await;
    let after = match &args.after {
        Some(hook) => hooks::run_hook(run, name, "backup", "after", hook).await,
        None => Ok(()),
    };
    made.and(after)
}

/// The age recipients of a backup: the order's `encrypt`, else `BACKUP_AGE_RECIPIENTS`.
fn recipients(
    run: &UnitRun<'_>,
    args: &BackupArgs,
) -> OrderResult<Option<backup::encrypt::Recipients>> {
    let list = match &args.encrypt {
        Some(e) => e.recipients.clone(),
        None => crate::generate::commands::age_recipients(&run.unit.environment),
    };
    if list.is_empty() {
        return Ok(None);
    }
    backup::encrypt::recipients(&list)
        .map(Some)
        .map_err(|e| OrderError::hinted(format!("cannot encrypt the backup: {e}"), "give age recipients (`age1…`, from `age-keygen -y KEYFILE`) or ssh public keys (`ssh-ed25519 …`)"))
}

/// Writes the new archive under its temporary name (the container stopped around it when the
/// order says so).
#[allow(clippy::too_many_arguments)]
async fn write(
    run: &UnitRun<'_>,
    name: &str,
    info: &ContainerInfo,
    args: &BackupArgs,
    dir: &Path,
    plan: &BackupPlan,
    sources: &[String],
    making: &backup::Making,
) -> OrderResult<backup::Written> {
    let helper = helper_for_backup(run, making);
    let stop = (args.stop && info.running).then(|| run.stop_timeout(name, args.timeout));
    while_stopped(
        run,
        name,
        stop,
        args.ready.as_ref(),
        "backup",
        Box::pin(async {
            // A helper's tar writes an uncompressed archive straight into its file, so that
            // one needs a name the container can be given.
            let direct = helper.is_some()
                && making.compression == Compression::None
                && making.encrypt.is_none();
            let pending = if direct {
                store::Pending::create_named(dir, &plan.file_name)
            } else {
                store::Pending::create(dir, &plan.file_name)
            }
            .map_err(|e| stream::archive_failed(run, name, dir, e))?;
            match &helper {
                Some(image) => {
                    with_helper(run, name, image, sources, pending, making, dir, plan).await
                }
                None => through_engine(run, name, sources, pending, making, dir).await,
            }
        }),
    )
    .await
}

/// Puts the written archive into place, points the link at it and removes what the plan
/// says, in that order: nothing is removed before the new archive is complete and on disk.
async fn finish(
    run: &UnitRun<'_>,
    name: &str,
    dir: &Path,
    plan: &BackupPlan,
    written: backup::Written,
) -> OrderResult {
    let (dir_for_commit, plan_for_commit) = (dir.to_path_buf(), plan.clone());
    let sha = written.sha256.clone();
    let (path, removed, linked) = tokio::task::spawn_blocking(move || {
        let (dir, plan) = (dir_for_commit, plan_for_commit);
        crate::faults::point("backup:written");
        let path = store::commit_archive(written.pending, &plan.file_name, &sha)?;
        let linked = match &plan.link {
            Some(link) => store::point_link(&dir, link, &plan.file_name)?,
            None => true,
        };
        crate::faults::point("backup:committed");
        let removed = store::remove_archives(&dir, &plan.remove)?;
        Ok::<_, io::Error>((path, removed, linked))
    })
    .await
    .map_err(|e| OrderError::failed(format!("writing the archive stopped: {e}")))?
    .map_err(|e| stream::archive_failed(run, name, dir, e))?;
    if let (false, Some(link)) = (linked, &plan.link) {
        output::warn(
            "backup",
            format!(
                "{} is an archive of its own, not a link: it was left alone and does not point at the newest backup",
                dir.join(link).display()
            ),
        );
    }
    for p in removed {
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
    ready: Option<&Ready>,
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
    let before = run.engine().container(name).await.ok().flatten();
    let started = match run.engine().start_container(name).await {
        Ok(()) => {
            output::info(format!("Started container {name} again"));
            match ready {
                // Waited for before the order counts as done.
                Some(r) => {
                    wait_ready(run, name, r, before.as_ref().and_then(previous_run_end)).await
                }
                None => Ok(()),
            }
        }
        Err(e) => Err(e.into()),
    };
    match (result, started) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) | (Err(e), Ok(())) => Err(e),
        (Err(e), Err(again)) => {
            output::error(
                what,
                format!("could not start container {name} again: {again}"),
            );
            Err(e)
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
async fn hold_lock(run: &UnitRun<'_>, dir: &Path, timeout: Option<Seconds>) -> OrderResult {
    // `.dstart-<unit>.lock`, with the unit spelt as in its network's name.
    let path = dir.join(format!(".{}.lock", run.naming.network));
    let mut held = run.backup_locks.lock().await;
    if held.iter().any(|l| l.path == path) {
        return Ok(());
    }
    let l = take_lock(run, &path, timeout, false).await?;
    held.push(l);
    remove_stale_temporaries(dir);
    Ok(())
}

/// Takes the lock of archive name `base` in `dir` for one order: runs of any unit that write or
/// read archives of that name there wait for each other, so that no two ever pick the same
/// name or prune what the other reads. Taken after the unit's lock and released with the order.
async fn name_lock(
    run: &UnitRun<'_>,
    dir: &Path,
    base: &str,
    timeout: Option<Seconds>,
) -> OrderResult<lock::DirLock> {
    let path = dir.join(format!(".dstart-archive@{base}.lock"));
    take_lock(run, &path, timeout, true).await
}

/// Takes the lock file `path`; `remove`: the file goes when the lock is released.
async fn take_lock(
    run: &UnitRun<'_>,
    path: &Path,
    timeout: Option<Seconds>,
    remove: bool,
) -> OrderResult<lock::DirLock> {
    let about = lock::describe_self(&format!(
        "{}/{}",
        run.unit.command.unit, run.unit.command.command
    ));
    let timeout = timeout.unwrap_or(LOCK_TIMEOUT).duration();
    let taken = if remove {
        lock::acquire_removed(path, &about, timeout, run.rt.interrupt.flag()).await
    } else {
        lock::acquire(path, &about, timeout, run.rt.interrupt.flag()).await
    };
    match taken {
        Ok(l) => Ok(l),
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

/// `HELPER_IMAGE`, when set and the engine runs on this host (the helper writes into a FIFO
/// here), and no `exclude` asks for members to be left out (which the engine's stream does).
fn helper_for_backup(run: &UnitRun<'_>, making: &backup::Making) -> Option<String> {
    let image = run
        .unit
        .environment
        .get_str("HELPER_IMAGE")
        .filter(|s| !s.is_empty())?;
    if making.exclude.is_some() {
        output::debug(
            "HELPER_IMAGE is set, but `exclude` leaves members out: backing up through the archive endpoint",
        );
        return None;
    }
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
