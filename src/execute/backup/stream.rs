//! A backup's bytes from the engine's archive endpoint into the archive writer, and the
//! progress line.

use std::io::{self, Read};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;

use super::helper::Counted;
use std::path::Path;

use crate::backup::pending::OutputError;
use crate::backup::{self, ChannelReader, Chunk, Content, Written, archive, complete, store};
use crate::engine::EngineError;
use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::output;

/// Bytes of the engine's stream handed to the archive writer at once.
const BATCH: usize = 256 << 10;

/// Bytes and rate on a terminal.
pub(super) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub(super) fn new(what: &str) -> Progress {
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

    pub(super) fn add(&self, n: usize) {
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

pub(super) fn join_failed(e: &tokio::task::JoinError) -> OrderError {
    OrderError::failed(format!("writing the archive stopped: {e}"))
}

/// Streams the sources through the engine's archive endpoint into `pending`: read on the
/// writer's thread where the engine is on a unix socket, else through the async client.
pub(super) async fn through_engine(
    run: &UnitRun<'_>,
    name: &str,
    sources: &[String],
    pending: store::Pending,
    making: &backup::Making,
    dir: &Path,
) -> OrderResult<Written> {
    let progress = std::sync::Arc::new(Progress::new(&format!("Backing up {name}")));
    let making = making.clone();
    if run.engine().address().starts_with("unix://") {
        let engine = run.engine().clone();
        let interrupt = run.rt.interrupt.clone();
        let (container, paths) = (name.to_string(), sources.to_vec());
        let seen = std::sync::Arc::clone(&progress);
        let opened = paths.into_iter().filter_map(move |path| {
            let reader = engine.download_blocking(&container, &path, interrupt.flag())?;
            Some(match reader {
                Ok(inner) => {
                    let stat = inner.path_stat::<complete::PathStat>();
                    let counted: Box<dyn Read + Send> = Box::new(Counted {
                        inner,
                        progress: std::sync::Arc::clone(&seen),
                    });
                    Ok((archive::member_prefix(&path), counted, stat))
                }
                Err(e) => Err(io::Error::other(e)),
            })
        });
        let worker = tokio::task::spawn_blocking(move || {
            backup::write_archive(pending, &making, Content::Engine(Box::new(opened)))
        });
        // The worker's reads notice an interrupt within a second and end it.
        let written = worker.await.map_err(|e| join_failed(&e))?;
        return written.map_err(|e| archive_failed(run, name, dir, e));
    }
    let (sources_tx, sources_rx) = std::sync::mpsc::channel::<(String, ChannelReader)>();
    let worker = tokio::task::spawn_blocking(move || {
        // The async client does not hand the stat header over: the stream's own end is checked.
        let opened = sources_rx.into_iter().map(|(prefix, reader)| {
            let reader: Box<dyn Read + Send> = Box::new(reader);
            Ok((prefix, reader, None))
        });
        backup::write_archive(pending, &making, Content::Engine(Box::new(opened)))
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
    written.map_err(|e| archive_failed(run, name, dir, e))
}

/// The error of a backup's writer: the engine's own error where it came from the engine, a
/// full backup directory named as such whichever stage noticed it, an incomplete stream as
/// incomplete.
pub(super) fn archive_failed(
    run: &UnitRun<'_>,
    name: &str,
    dir: &Path,
    e: io::Error,
) -> OrderError {
    if run.rt.interrupt.is_set() {
        return OrderError::Interrupted;
    }
    if OutputError::is_full(&e) {
        return disk_full(dir);
    }
    if let Some(out) = OutputError::of(&e) {
        return OrderError::failed(format!(
            "writing the archive of {name} into {} failed: {out}; nothing was written under an archive name",
            dir.display()
        ));
    }
    if let Some(why) = e
        .get_ref()
        .and_then(|r| r.downcast_ref::<complete::Incomplete>())
    {
        return OrderError::failed(format!(
            "the backup of {name} failed: {why}; nothing was written under an archive name"
        ));
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

/// The failure of a backup whose directory is full.
pub(super) fn disk_full(dir: &Path) -> OrderError {
    OrderError::hinted(
        format!(
            "the backup directory {} is full (no space left on device); nothing was written under an archive name, older archives are untouched",
            dir.display()
        ),
        "free space there (or lower `keep`), or point BACKUP_DIR at a larger file system",
    )
}
