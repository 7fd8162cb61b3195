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
use std::io::{self, Read, Seek, Write};

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

/// Bytes hashed at once; also the buffer of [`Hashing`] and [`HashingReader`].
const HASH_BLOCK: usize = 1 << 18;

/// Blocks waiting for the hash thread: enough to keep it busy, little memory.
const HASH_QUEUE: usize = 4;

/// SHA-256 on a thread of its own. The hash (about 1 GB/s per core here) would otherwise be
/// the slowest step on the thread that writes or checks an archive.
struct HashThread {
    blocks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Hashed blocks, back for reuse.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<String>>,
}

impl HashThread {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE);
        let (back_tx, back) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            for block in rx {
                hasher.update(&block);
                // The writer may be gone already (it finished or failed).
                let _ = back_tx.send(block);
            }
            crate::text::hex(&hasher.finalize())
        });
        HashThread {
            blocks: Some(tx),
            spare: back,
            thread: Some(thread),
        }
    }

    fn stopped() -> io::Error {
        io::Error::other("the checksum thread stopped")
    }

    /// Hands `block` over and returns an empty buffer for the next one.
    fn hash(&mut self, block: Vec<u8>) -> io::Result<Vec<u8>> {
        self.blocks
            .as_ref()
            .ok_or_else(Self::stopped)?
            .send(block)
            .map_err(|_| Self::stopped())?;
        Ok(self.spare_block())
    }

    /// An empty buffer: a hashed block back for reuse, or a new one.
    fn spare_block(&self) -> Vec<u8> {
        match self.spare.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(HASH_BLOCK),
        }
    }

    /// The hex digest of everything handed over.
    fn finish(mut self) -> io::Result<String> {
        // Whoever holds a sender (this one, or a writer thread) has closed it by now.
        self.blocks = None;
        self.thread
            .take()
            .ok_or_else(Self::stopped)?
            .join()
            .map_err(|_| Self::stopped())
    }
}

/// Bytes per `write` call into an archive file: what curl writes at a time. Measured here (6.x
/// kernel, ext4) with a 1 GiB backup: the kernel's copy into the page cache took 1.6 s of
/// system time with 1 MiB writes, 1.5 s with 64 KiB, 0.85 s with 16 KiB, 1.3 s with 4 KiB.
const WRITE_PIECE: usize = 16 << 10;

/// Buffers writes into blocks of [`HASH_BLOCK`]; a thread of its own writes each block to `W`
/// and hands it to the hash thread, so that whatever fills the blocks (a socket the engine
/// writes into) never waits for the file system. Keeps the length.
pub struct Hashing<W: Write + Send + 'static> {
    block: Vec<u8>,
    hash: HashThread,
    /// Blocks for the writer thread; closed by `finish`.
    blocks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<io::Result<W>>>,
    bytes: u64,
}

impl<W: Write + Send + 'static> Hashing<W> {
    pub fn new(mut inner: W) -> Self {
        let mut hash = HashThread::new();
        let to_hash = hash.blocks.take();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE);
        let writer = std::thread::spawn(move || {
            let to_hash = to_hash.ok_or_else(HashThread::stopped)?;
            for block in rx {
                for piece in block.chunks(WRITE_PIECE) {
                    inner.write_all(piece)?;
                }
                to_hash.send(block).map_err(|_| HashThread::stopped())?;
            }
            inner.flush()?;
            Ok(inner)
        });
        Hashing {
            block: Vec::with_capacity(HASH_BLOCK),
            hash,
            blocks: Some(tx),
            writer: Some(writer),
            bytes: 0,
        }
    }

    /// The writer thread's result once it stopped (its error, if it failed).
    fn join_writer(&mut self) -> io::Result<W> {
        self.blocks = None;
        match self.writer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Err(io::Error::other("the archive writer thread stopped")),
        }
    }

    fn pass_on(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.block);
        let sent = self.blocks.as_ref().map(|tx| tx.send(full));
        if !matches!(sent, Some(Ok(()))) {
            // The writer stopped: its error says why.
            return Err(match self.join_writer() {
                Err(e) => e,
                Ok(_) => io::Error::other("the archive writer thread stopped"),
            });
        }
        self.block = self.hash.spare_block();
        Ok(())
    }

    /// Writes what is buffered and returns the inner writer, the hex digest and the length.
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.pass_on()?;
        let inner = self.join_writer()?;
        let digest = self.hash.finish()?;
        Ok((inner, digest, self.bytes))
    }
}

impl<W: Write + Send + 'static> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(HASH_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.bytes += n as u64;
        if self.block.len() == HASH_BLOCK {
            self.pass_on()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are passed on whole; `finish` writes the last one.
        Ok(())
    }
}

/// Reads `R` in blocks of [`HASH_BLOCK`] and hashes each on the hash thread once it was read
/// through.
pub struct HashingReader<R> {
    inner: R,
    block: Vec<u8>,
    at: usize,
    hash: HashThread,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            block: Vec::with_capacity(HASH_BLOCK),
            at: 0,
            hash: HashThread::new(),
        }
    }

    /// Reads the rest (a damaged archive is still hashed to its end) and returns the digest.
    pub fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        let last = std::mem::take(&mut self.block);
        self.hash.hash(last)?;
        self.hash.finish()
    }

    /// Hashes the block read through and reads the next; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        let done = std::mem::take(&mut self.block);
        let mut next = if done.is_empty() {
            done
        } else {
            self.hash.hash(done)?
        };
        next.resize(HASH_BLOCK, 0);
        let mut filled = 0;
        while filled < HASH_BLOCK {
            match self.inner.read(&mut next[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    next.truncate(filled);
                    self.block = next;
                    return Err(e);
                }
            }
        }
        next.truncate(filled);
        self.block = next;
        self.at = 0;
        Ok(filled > 0)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.block.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
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

/// Reads `R` ahead on a thread of its own, a few blocks at a time: whatever `R` costs (unpacking
/// an archive) runs beside whatever the reader does with the bytes (sending them to the engine).
pub struct ReadAhead {
    blocks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    done: bool,
}

impl ReadAhead {
    pub fn new(mut inner: impl Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(HASH_QUEUE);
        std::thread::spawn(move || {
            loop {
                let mut block = vec![0u8; HASH_BLOCK];
                let mut filled = 0;
                let result = loop {
                    match inner.read(&mut block[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == HASH_BLOCK {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                block.truncate(filled);
                let end = filled == 0;
                let sent = match result {
                    // What was read before the error goes first.
                    Err(e) => {
                        if !block.is_empty() {
                            let _ = tx.send(Ok(block));
                        }
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Ok(()) if end => return,
                    Ok(()) => tx.send(Ok(block)),
                };
                if sent.is_err() {
                    // The reader is gone.
                    return;
                }
            }
        });
        ReadAhead {
            blocks: rx,
            current: Vec::new(),
            at: 0,
            done: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.blocks.recv() {
                Ok(block) => {
                    self.current = block?;
                    self.at = 0;
                }
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A file that another process is still writing, read as it grows: at its current end, a read
/// waits until there is more or `done` is set (the writer closed it), then reads to the real
/// end. What was read is handed to write-back as it goes ([`store::start_write_back`]).
pub struct Growing {
    file: File,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cancel: Box<dyn Fn() -> bool + Send + Sync>,
    read: u64,
    written_back: u64,
    last_pass: bool,
}

impl Growing {
    pub fn new(
        file: File,
        done: std::sync::Arc<std::sync::atomic::AtomicBool>,
        cancel: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Self {
        Growing {
            file,
            done,
            cancel,
            read: 0,
            written_back: 0,
            last_pass: false,
        }
    }
}

impl Read for Growing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering;
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.read += n as u64;
                if self.read - self.written_back >= store::WRITE_BACK {
                    store::start_write_back(
                        &self.file,
                        self.written_back,
                        self.read - self.written_back,
                    );
                    self.written_back = self.read;
                }
                return Ok(n);
            }
            if self.last_pass {
                return Ok(0);
            }
            if self.done.load(Ordering::SeqCst) {
                // The writer is gone: whatever it wrote is there now.
                self.last_pass = true;
                continue;
            }
            if (self.cancel)() {
                return Err(io::Error::other("interrupted"));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
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

    /// A file system that fills up after `room` bytes.
    #[derive(Debug)]
    struct Full {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert!(buf.len() <= WRITE_PIECE, "writes are split into pieces");
            if self.got.len() + buf.len() > self.room {
                return Err(io::Error::other("No space left on device"));
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 7 % 251).unwrap())
            .collect()
    }

    #[test]
    fn hashing_passes_everything_on_in_order_with_its_digest() {
        // Odd write sizes across many blocks, and a last partial block.
        let input = data(5 * HASH_BLOCK + 12_345);
        let mut h = Hashing::new(Full {
            room: usize::MAX,
            got: Vec::new(),
        });
        for piece in input.chunks(9_999) {
            h.write_all(piece).unwrap();
        }
        let (full, digest, len) = h.finish().unwrap();
        assert_eq!(len, input.len() as u64);
        assert!(full.got == input, "the bytes arrive whole and in order");
        assert_eq!(digest, crate::text::hex(&Sha256::digest(&input)));
        let mut reader = HashingReader::new(&input[..]);
        let mut back = Vec::new();
        reader.read_to_end(&mut back).unwrap();
        assert!(back == input);
        assert_eq!(reader.finish().unwrap(), digest);
    }

    #[test]
    fn a_failing_file_write_is_reported_with_its_own_error() {
        let mut h = Hashing::new(Full {
            room: 2 * HASH_BLOCK,
            got: Vec::new(),
        });
        let input = data(40 * HASH_BLOCK);
        // The writer thread fails on the third block; a later write or `finish` says why.
        let e = match h.write_all(&input) {
            Err(e) => e,
            Ok(()) => h.finish().unwrap_err(),
        };
        assert_eq!(e.to_string(), "No space left on device");
    }

    #[test]
    fn growing_follows_a_file_until_its_writer_is_done() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.tar");
        let mut out = File::create(&path).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let input = data(3 << 20);
        let writer = {
            let (done, input) = (Arc::clone(&done), input.clone());
            std::thread::spawn(move || {
                for piece in input.chunks(100_000) {
                    out.write_all(piece).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                drop(out);
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut growing = Growing::new(File::open(&path).unwrap(), done, Box::new(|| false));
        let mut got = Vec::new();
        growing.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == input, "read {} of {} bytes", got.len(), input.len());

        // Cancelled while the writer is still at it.
        let stalled = Growing::new(
            File::open(&path).unwrap(),
            Arc::new(AtomicBool::new(false)),
            Box::new(|| true),
        );
        let e = io::copy(&mut { stalled }, &mut io::sink()).unwrap_err();
        assert_eq!(e.to_string(), "interrupted");
    }

    #[test]
    fn read_ahead_passes_everything_then_the_error() {
        let input = data(3 * HASH_BLOCK + 5);
        let mut got = Vec::new();
        ReadAhead::new(std::io::Cursor::new(input.clone()))
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == input);

        // Bytes before an error arrive first, then the error itself.
        let failing = std::io::Cursor::new(input.clone()).chain(Failing);
        let mut reader = ReadAhead::new(failing);
        let mut got = Vec::new();
        let e = reader.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.to_string(), "unexpected end of file");
        assert!(got == input);
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of file",
            ))
        }
    }
}
