//! Backups of container volumes on the host (SPEC "Backup and restore (cron-grade)"): the
//! archive files ([`store`]), their tar content ([`archive`]), compression ([`compress`]) and
//! the lock that keeps two runs apart ([`lock`]). What happens on the engine is in
//! `execute::backup`.
//!
//! The byte pipelines here run on a blocking thread: tar streams from the engine arrive through
//! a channel ([`ChannelReader`]), go through the tar rewriter, the compressor and the checksum
//! into a [`store::Pending`] file, in constant memory whatever the volume size.

pub mod archive;
pub(crate) mod check;
pub mod complete;
pub mod compress;
pub mod encrypt;
mod hashing;
pub mod lock;
pub mod pending;
pub mod plan;
mod readers;
pub mod retention;
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

/// One tar stream of the engine with the prefix its member names get, and what the engine
/// reported about the path (when it did).
pub type Source = io::Result<(String, Box<dyn Read + Send>, Option<complete::PathStat>)>;

/// Where an archive's bytes go after compression: straight into the file's hasher, or through
/// age first.
enum Sink {
    Plain(Hashing<store::Pending>),
    Age(encrypt::Encrypting<Hashing<store::Pending>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Age(w) => w.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> io::Result<Hashing<store::Pending>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Age(w) => w.finish(),
        }
    }
}

/// How a new archive is written.
#[derive(Debug, Default, Clone)]
pub struct Making {
    pub compression: Compression,
    /// age recipients, for an encrypted archive.
    pub encrypt: Option<std::sync::Arc<encrypt::Recipients>>,
    /// Members left out (engine streams only).
    pub exclude: Option<std::sync::Arc<archive::Exclude>>,
}

/// Where the tar content of a new archive comes from.
pub enum Content {
    /// The engine's tar streams of the sources, opened one after another.
    Engine(Box<dyn Iterator<Item = Source> + Send>),
    /// A finished tar stream (a helper's `tar`), taken as it is.
    Tar(Box<dyn Read + Send>),
}

/// Writes a whole archive into `pending`: tar content, compressed, encrypted when asked,
/// hashed. Every tar stream must arrive whole ([`complete`]), and the archive must hold
/// something: else the error says why and `pending` is dropped unnamed.
pub fn write_archive(
    pending: store::Pending,
    making: &Making,
    content: Content,
) -> io::Result<Written> {
    let hashing = Hashing::new(pending);
    let sink = match &making.encrypt {
        Some(r) => Sink::Age(encrypt::Encrypting::new(r, hashing)?),
        None => Sink::Plain(hashing),
    };
    let mut compressor = compress::encoder(making.compression, sink)?;
    let counts = match content {
        Content::Engine(sources) => {
            let mut builder = tar::Builder::new(compressor);
            let mut counts = archive::Counts::default();
            for source in sources {
                let (prefix, reader, stat) = source?;
                let reader = crate::faults::After::new(reader, "backup:streaming", 1 << 20);
                let mut watched = complete::Watched::new(reader);
                let c = archive::append_source(
                    &mut builder,
                    &mut watched,
                    &prefix,
                    making.exclude.as_deref(),
                )?;
                watched.finish(stat.as_ref())?;
                counts.entries += c.entries;
                counts.bytes += c.bytes;
            }
            compressor = builder.into_inner()?;
            counts
        }
        Content::Tar(reader) => {
            let reader = crate::faults::After::new(reader, "backup:streaming", 1 << 20);
            let mut watched = complete::Watched::new(reader);
            let bytes = copy_large(&mut watched, &mut compressor)?;
            let entries = watched.finish(None)?;
            archive::Counts { entries, bytes }
        }
    };
    if counts.entries == 0 {
        return Err(complete::incomplete("it holds no member at all".into()));
    }
    let sink = compressor.finish()?.finish()?;
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
    let mut hashing = HashingReader::new(complete::Watched::new(growing));
    let size = io::copy(&mut hashing, &mut io::sink())?;
    let (sha256, watched) = hashing.finish_with_inner()?;
    let entries = watched.finish(None)?;
    Ok(Written {
        pending,
        sha256,
        size,
        counts: archive::Counts {
            entries,
            bytes: size,
        },
    })
}

/// Why an archive may not be restored.
#[derive(Debug)]
pub enum Rejected {
    Io(io::Error),
    Checksum {
        expected: String,
        actual: String,
    },
    Content(archive::Refusal),
    /// An encrypted archive without an identity that opens it.
    Identity(String),
}

/// Reads the whole archive `file` once, from its start: its checksum against `expected` (from
/// its `.sha256`), its decryption with the identities of `identity` when it is an age file,
/// and every member against `volumes`; the tar must be whole (end-of-archive blocks). Returns
/// its format and what it holds.
pub fn verify(
    file: &mut File,
    expected: Option<&str>,
    volumes: &[String],
    identity: Option<&std::path::Path>,
) -> Result<(store::Format, archive::Checked), Rejected> {
    file.rewind().map_err(Rejected::Io)?;
    let mut head = [0u8; 32];
    let n = read_head(file, &mut head).map_err(Rejected::Io)?;
    let encrypted = encrypt::is_age(&head[..n]);
    let ids = match (encrypted, identity) {
        (false, _) => None,
        (true, None) => {
            return Err(Rejected::Identity(
                "it is encrypted with age, and no identity was given".into(),
            ));
        }
        (true, Some(path)) => Some(encrypt::identities(path).map_err(Rejected::Identity)?),
    };
    file.rewind().map_err(Rejected::Io)?;
    let mut hashing = HashingReader::new(file);
    let checked = {
        let plain: Result<Box<dyn Read + Send + '_>, Rejected> = match &ids {
            Some(ids) => encrypt::decrypting(&mut hashing, ids)
                .map(|r| Box::new(r) as Box<dyn Read + Send>)
                .map_err(|e| Rejected::Identity(e.to_string())),
            None => Ok(Box::new(&mut hashing)),
        };
        plain.and_then(|plain| {
            let (compression, plain) = compress::sniff(plain).map_err(Rejected::Io)?;
            let tar = compress::decoder(compression, plain)
                .map_err(|e| Rejected::Content(archive::Refusal::Damaged(e)))?;
            let mut watched = complete::Watched::new(tar);
            let checked = archive::check(&mut watched, volumes).map_err(Rejected::Content)?;
            watched.end.finish(None).map_err(|why| {
                Rejected::Content(archive::Refusal::Damaged(complete::incomplete(why)))
            })?;
            Ok((
                store::Format {
                    compression,
                    encrypted,
                },
                checked,
            ))
        })
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
    checked
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
            let sources = std::iter::once(Ok((String::new(), reader, None)));
            let name = store::fixed_name("t", c);
            let pending = store::Pending::create(dir.path(), &name).unwrap();
            let making = Making {
                compression: c,
                ..Making::default()
            };
            let w = write_archive(pending, &making, Content::Engine(Box::new(sources))).unwrap();
            assert_eq!(w.counts.bytes, 3);
            let path = w.pending.commit(&name).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), w.size);
            let mut file = File::open(&path).unwrap();
            let (found, checked) =
                verify(&mut file, Some(&w.sha256), &["/data".into()], None).unwrap();
            assert_eq!(found, store::Format::plain(c));
            assert_eq!(checked.roots, ["data"]);
            assert!(matches!(
                verify(&mut file, Some("00"), &["/data".into()], None),
                Err(Rejected::Checksum { .. })
            ));
            assert!(matches!(
                verify(&mut file, None, &["/other".into()], None),
                Err(Rejected::Content(archive::Refusal::Unsafe { .. }))
            ));
        }
    }
}
