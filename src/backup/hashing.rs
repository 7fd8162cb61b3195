//! SHA-256 of archives on a thread of its own, beside the thread that writes the file: a writer
//! ([`Hashing`]) and a reader ([`HashingReader`]) that hash what passes through them.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// Bytes hashed at once; also the buffer of [`Hashing`] and [`HashingReader`].
pub(super) const HASH_BLOCK: usize = 1 << 18;

/// Blocks waiting for the hash thread: enough to keep it busy, little memory.
pub(super) const HASH_QUEUE: usize = 4;

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
    pub fn finish(self) -> io::Result<String> {
        self.finish_with_inner().map(|(digest, _)| digest)
    }

    /// [`HashingReader::finish`], giving the inner reader back.
    pub fn finish_with_inner(mut self) -> io::Result<(String, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let last = std::mem::take(&mut self.block);
        self.hash.hash(last)?;
        Ok((self.hash.finish()?, self.inner))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
