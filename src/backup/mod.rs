//! Backups of container volumes on the host (SPEC "Backup and restore (cron-grade)"): the
//! archive files ([`store`]), their tar content ([`archive`]), compression ([`compress`]) and
//! the lock that keeps two runs apart ([`lock`]). What happens on the engine is in
//! `execute::backup`.
//!
//! The byte pipelines here run on a blocking thread: tar streams from the engine arrive through
//! a channel ([`ChannelReader`]), go through the tar rewriter, the compressor and the checksum
//! into a [`store::Pending`] file, in constant memory whatever the volume size.

pub mod archive;
pub mod compress;
mod hashing;
pub mod lock;
pub mod pending;
mod readers;
pub mod store;

pub use hashing::{Hashing, HashingReader};
pub use readers::{Growing, ReadAhead};

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use bytes::Bytes;

use crate::unit::order::Compression;

/// Bytes of a tar stream handed from the async side to a blocking reader.
pub type Chunk = io::Result<Bytes>;

/// A blocking [`Read`] over chunks sent from async code; ends when the sender is dropped.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Chunk>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
/// What went into a new archive file.
#[derive(Debug)]
pub struct Written {
    pub pending: store::Pending,
    pub sha256: String,
    /// Size of the archive file.
    pub size: u64,
    pub counts: archive::Counts,
}

/// One tar stream of the engine with the prefix its member names get.
pub type Source = io::Result<(String, Box<dyn Read + Send>)>;

/// Where the tar content of a new archive comes from.
pub enum Content {
    /// The engine's tar streams of the sources, opened one after another.
    Engine(Box<dyn Iterator<Item = Source> + Send>),
    /// A finished tar stream (a helper's `tar`), taken as it is.
    Tar(Box<dyn Read + Send>),
}

/// Writes a whole archive into `pending`: tar content, compressed, hashed.
pub fn write_archive(
    pending: store::Pending,
    compression: Compression,
    content: Content,
) -> io::Result<Written> {
    let sink = Hashing::new(pending);
    let mut compressor = compress::encoder(compression, sink)?;
    let counts = match content {
        Content::Engine(sources) => {
            let mut builder = tar::Builder::new(compressor);
            let mut counts = archive::Counts::default();
            for source in sources {
                let (prefix, reader) = source?;
                let c = archive::append_source(&mut builder, reader, &prefix)?;
                counts.entries += c.entries;
                counts.bytes += c.bytes;
            }
            compressor = builder.into_inner()?;
            counts
        }
        Content::Tar(mut reader) => {
            let bytes = copy_large(&mut reader, &mut compressor)?;
            archive::Counts { entries: 0, bytes }
        }
    };
    let sink = compressor.finish()?;
    let (pending, sha256, size) = sink.finish()?;
    Ok(Written {
        pending,
        sha256,
        size,
        counts,
    })
}

/// `io::copy` with a buffer large enough for fast pipes.
fn copy_large(from: &mut dyn Read, to: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 18];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Hashes a finished archive being written into `pending` by another process, read through
/// `growing` (a reader of the same file).
pub fn hash_written(pending: store::Pending, growing: impl Read) -> io::Result<Written> {
    let mut hashing = HashingReader::new(growing);
    let size = io::copy(&mut hashing, &mut io::sink())?;
    let sha256 = hashing.finish()?;
    Ok(Written {
        pending,
        sha256,
        size,
        counts: archive::Counts {
            entries: 0,
            bytes: size,
        },
    })
}

/// Why an archive may not be restored.
#[derive(Debug)]
pub enum Rejected {
    Io(io::Error),
    Checksum { expected: String, actual: String },
    Content(archive::Refusal),
}

/// Reads the whole archive `file` once, from its start: its checksum against `expected` (from
/// its `.sha256`) and every member against `volumes`. Returns its compression and what it holds.
pub fn verify(
    file: &mut File,
    expected: Option<&str>,
    volumes: &[String],
) -> Result<(Compression, archive::Checked), Rejected> {
    file.rewind().map_err(Rejected::Io)?;
    let mut head = [0u8; 4];
    let n = read_head(file, &mut head).map_err(Rejected::Io)?;
    let compression = compress::detect(&head[..n]);
    file.rewind().map_err(Rejected::Io)?;
    let mut hashing = HashingReader::new(file);
    let checked = match compress::decoder(compression, &mut hashing) {
        Ok(tar) => archive::check(tar, volumes),
        Err(e) => Err(archive::Refusal::Damaged(e)),
    };
    let actual = hashing.finish().map_err(Rejected::Io)?;
    if let Some(expected) = expected {
        if expected != actual {
            return Err(Rejected::Checksum {
                expected: expected.to_string(),
                actual,
            });
        }
    }
    checked.map(|c| (compression, c)).map_err(Rejected::Content)
}

fn read_head(file: &mut File, head: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_written_hashed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        tar.append_data(&mut h, "data/f", &b"abc"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        for c in store::ALL_COMPRESSIONS {
            let (ctx, crx) = tokio::sync::mpsc::channel(4);
            ctx.blocking_send(Ok(Bytes::from(tar.clone()))).unwrap();
            drop(ctx);
            let reader: Box<dyn Read + Send> = Box::new(ChannelReader::new(crx));
            let sources = std::iter::once(Ok((String::new(), reader)));
            let name = store::fixed_name("t", c);
            let pending = store::Pending::create(dir.path(), &name).unwrap();
            let w = write_archive(pending, c, Content::Engine(Box::new(sources))).unwrap();
            assert_eq!(w.counts.bytes, 3);
            let path = w.pending.commit(&name).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), w.size);
            let mut file = File::open(&path).unwrap();
            let (found, checked) = verify(&mut file, Some(&w.sha256), &["/data".into()]).unwrap();
            assert_eq!(found, c);
            assert_eq!(checked.roots, ["data"]);
            assert!(matches!(
                verify(&mut file, Some("00"), &["/data".into()]),
                Err(Rejected::Checksum { .. })
            ));
            assert!(matches!(
                verify(&mut file, None, &["/other".into()]),
                Err(Rejected::Content(archive::Refusal::Unsafe { .. }))
            ));
        }
    }
}
