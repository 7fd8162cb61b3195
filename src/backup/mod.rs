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
pub mod lock;
pub mod store;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};

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

/// Passes writes on and keeps their SHA-256 and length.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads the rest (a damaged archive is still hashed to its end) and returns the digest.
    pub fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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

/// Where the tar content of a new archive comes from.
pub enum Content {
    /// The engine's tar streams of the sources, one after another: `(member prefix, stream)`.
    Engine(std::sync::mpsc::Receiver<(String, ChannelReader)>),
    /// A finished tar stream (a helper's `tar`), taken as it is.
    Tar(Box<dyn Read + Send>),
}

/// Writes a whole archive into `pending`: tar content, compressed, hashed.
pub fn write_archive(
    pending: store::Pending,
    compression: Compression,
    content: Content,
) -> io::Result<Written> {
    let sink = Hashing::new(BufWriter::with_capacity(1 << 20, pending));
    let mut compressor = compress::encoder(compression, sink)?;
    let counts = match content {
        Content::Engine(sources) => {
            let mut builder = tar::Builder::new(compressor);
            let mut counts = archive::Counts::default();
            for (prefix, reader) in sources {
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
    let (buffered, sha256, size) = sink.finish();
    let pending = buffered
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
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

/// Why an archive may not be restored.
#[derive(Debug)]
pub enum Rejected {
    Io(io::Error),
    Checksum { expected: String, actual: String },
    Content(archive::Refusal),
}

/// Reads the whole archive at `path` once: its checksum against `expected` (from its `.sha256`)
/// and every member against `volumes`. Returns its compression and what it holds.
pub fn verify(
    path: &Path,
    expected: Option<&str>,
    volumes: &[String],
) -> Result<(Compression, archive::Checked), Rejected> {
    let mut file = File::open(path).map_err(Rejected::Io)?;
    let mut head = [0u8; 4];
    let n = read_head(&mut file, &mut head).map_err(Rejected::Io)?;
    let compression = compress::detect(&head[..n]);
    let file = File::open(path).map_err(Rejected::Io)?;
    let mut hashing = HashingReader::new(io::BufReader::with_capacity(1 << 20, file));
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
            let (tx, rx) = std::sync::mpsc::channel();
            let (ctx, crx) = tokio::sync::mpsc::channel(4);
            ctx.blocking_send(Ok(Bytes::from(tar.clone()))).unwrap();
            drop(ctx);
            tx.send((String::new(), ChannelReader::new(crx))).unwrap();
            drop(tx);
            let name = store::fixed_name("t", c);
            let pending = store::Pending::create(dir.path(), &name).unwrap();
            let w = write_archive(pending, c, Content::Engine(rx)).unwrap();
            assert_eq!(w.counts.bytes, 3);
            let path = w.pending.commit(&name).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), w.size);
            let (found, checked) = verify(&path, Some(&w.sha256), &["/data".into()]).unwrap();
            assert_eq!(found, c);
            assert_eq!(checked.roots, ["data"]);
            assert!(matches!(
                verify(&path, Some("00"), &["/data".into()]),
                Err(Rejected::Checksum { .. })
            ));
            assert!(matches!(
                verify(&path, None, &["/other".into()]),
                Err(Rejected::Content(archive::Refusal::Unsafe { .. }))
            ));
        }
    }
}
