//! `restore`: the archive is read whole and checked (checksum, damage, unsafe members) before
//! anything is written, then unpacked through the engine's archive endpoint.

use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;

use super::helper::{Counted, check_clean_tools, empty_volumes};
use super::hooks::run_hook;
use super::stream::Progress;
use super::{default_sources, existing, hold_lock, name_lock, while_stopped};
use crate::backup::store::Format;
use crate::backup::{self, Rejected, archive, store};
use crate::engine::archive::UploadError;
use crate::execute::{OrderError, OrderResult, UnitRun, resolve_host_path};
use crate::output;
use crate::unit::order::{Order, RestoreArgs};

/// `restore`: locks, finds and checks the archive whole, and only then writes into the
/// container.
pub async fn restore(run: &UnitRun<'_>, order: &Order, args: &RestoreArgs) -> OrderResult {
    let name = order.container.as_str();
    let spec = run.spec(name)?;
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
    let identity = args
        .identity
        .clone()
        .or_else(|| run.unit.environment.get_str("BACKUP_AGE_IDENTITY"))
        .filter(|s| !s.is_empty())
        .map(|i| resolve_host_path(run.rt, Some(spec), &i));
    // Locks before the first engine call (see `backup`); the name's lock keeps a backup of
    // another unit from pruning the archive while it is read.
    hold_lock(run, &dir, args.lock_timeout).await?;
    let lock_name = match &args.archive {
        Some(a) => Path::new(a)
            .file_name()
            .map_or_else(|| base.to_string(), |f| f.to_string_lossy().into_owned()),
        None => base.to_string(),
    };
    let _name_lock = name_lock(run, &dir, &lock_name, args.lock_timeout).await?;
    let info = existing(run, name).await?;
    if order.generated && default_sources(run, order, &info).await?.is_empty() {
        output::debug(format!(
            "No volumes to restore in container {name} (skipped)"
        ));
        return Ok(());
    }
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
                    "no archive named {base} in {} (looked for {base}.tar.gz, {base}.tar.zst, {base}.tar, the same with .age, and {base}-<timestamp>.…)",
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
        let identity = identity.clone();
        tokio::task::spawn_blocking(move || {
            let verified =
                backup::verify(&mut file, Some(&expected), &volumes, identity.as_deref());
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
    let (format, checked) = verified.map_err(|r| match r {
        Rejected::Identity(why) => OrderError::hinted(
            format!("the archive {shown} cannot be read: {why}; nothing was restored"),
            "give the age identity file that belongs to a recipient of the backup: `identity: FILE` on the restore order or BACKUP_AGE_IDENTITY in an environment file",
        ),
        r => OrderError::failed(match r {
            Rejected::Io(e) => format!("reading {shown}: {e}"),
            Rejected::Checksum { expected, actual } => format!(
                "the archive {shown} is damaged or was changed: its checksum is {actual}, its .sha256 file says {expected}; nothing was restored"
            ),
            Rejected::Content(archive::Refusal::Damaged(e)) => format!(
                "the archive {shown} is damaged ({}); nothing was restored",
                archive::printable(&e.to_string())
            ),
            Rejected::Content(refusal @ archive::Refusal::Unsafe { .. }) => {
                format!("the archive {shown} is refused, {refusal}; nothing was restored")
            }
            Rejected::Identity(_) => unreachable!("handled above"),
        }),
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
        return Err(OrderError::failed(format!(
            "the archive {shown} holds nothing (an empty archive); nothing was restored"
        )));
    }

    if args.clean {
        check_clean_tools(run, name).await?;
    }
    if let Some(hook) = &args.before {
        run_hook(run, name, "restore", "before", hook).await?;
    }
    crate::faults::point("restore:verified");
    let stop = (args.stop && info.running).then(|| run.stop_timeout(name, args.timeout));
    if info.running && !args.stop {
        output::warn(
            "restore",
            format!(
                "container {name} is running: its processes see the files change underneath them (add `stop: true` to stop it for the restore)"
            ),
        );
    }
    while_stopped(
        run,
        name,
        stop,
        args.ready.as_ref(),
        "restore",
        Box::pin(async {
            if args.clean {
                empty_volumes(run, name, &checked.roots).await?;
            }
            upload(
                run,
                name,
                &path,
                file,
                format,
                identity.as_deref(),
                &expected,
            )
            .await
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
    if let Some(hook) = &args.after {
        run_hook(run, name, "restore", "after", hook).await?;
    }
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
    format: Format,
    identity: Option<&Path>,
    expected: &str,
) -> OrderResult {
    let progress = std::sync::Arc::new(Progress::new(&format!("Restoring {name}")));
    let (raw, digest) =
        Rehashed::new(file).map_err(OrderError::io(format!("reading {}", path.display())))?;
    let identity = identity.map(Path::to_path_buf);
    let sent = if run.engine().address().starts_with("unix://") {
        let engine = run.engine().clone();
        let container = name.to_string();
        let seen = std::sync::Arc::clone(&progress);
        let interrupted = run.rt.interrupt.flag();
        let sent = tokio::task::spawn_blocking(move || {
            let tar = plain_tar(raw, format, identity.as_deref()).map_err(UploadError::Read)?;
            let mut body = Counted {
                inner: crate::faults::After::new(
                    backup::ReadAhead::new(tar),
                    "restore:uploading",
                    1 << 20,
                ),
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
        upload_async(run, name, path, raw, format, identity, &progress).await
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
    format: Format,
    identity: Option<std::path::PathBuf>,
    progress: &std::sync::Arc<Progress>,
) -> OrderResult {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let reader = tokio::task::spawn_blocking(move || {
        let mut input = plain_tar(raw, format, identity.as_deref())?;
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

/// The tar inside the archive read by `raw`: decrypted (with the identities of `identity`) and
/// decompressed as `format` says.
fn plain_tar(
    raw: Rehashed,
    format: Format,
    identity: Option<&Path>,
) -> io::Result<Box<dyn Read + Send>> {
    if !format.encrypted {
        return backup::compress::decoder(format.compression, raw);
    }
    let path = identity.ok_or_else(|| io::Error::other("no age identity"))?;
    let ids = backup::encrypt::identities(path).map_err(io::Error::other)?;
    let plain = backup::encrypt::decrypting(raw, &ids)?;
    backup::compress::decoder(format.compression, plain)
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
