//! Compression of archives on every core, and reading them back.
//!
//! gzip is written as a series of independent gzip members of [`BLOCK`] bytes of input each,
//! compressed in parallel (as `pigz --independent` does); `gzip -d`, `tar xz` and the engine
//! read such a file as one stream. A member that does not shrink is stored instead, so random
//! data does not grow. zstd uses the library's own worker threads.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::Compression as Level;
use flate2::write::GzEncoder;

use crate::unit::order::Compression;

/// Input bytes per gzip member: small enough to keep little in memory, large enough that the
/// members cost nothing in size (each starts with an empty window: 0.1 % on text).
pub const BLOCK: usize = 256 << 10;

/// zlib-rs' level 2: the size of `gzip -1` at twice its speed. (Its level 1 is a quicker mode
/// that leaves text 60 % larger.)
const GZIP_LEVEL: u32 = 2;

/// A writer that compresses into `W`; [`Finish::finish`] ends the stream and returns `W`.
pub trait Finish<W>: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<W>;
}

struct Plain<W>(W);

impl<W: Write + Send> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Finish<W> for Plain<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        Ok(self.0)
    }
}

struct Zstd<W: Write>(zstd::stream::write::Encoder<'static, W>);

impl<W: Write + Send> Write for Zstd<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Finish<W> for Zstd<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        self.0.finish()
    }
}

/// The number of compression threads: one per core.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A compressing writer for `compression` (level 1 for gzip and zstd: fast, for nightly runs).
pub fn encoder<W: Write + Send + 'static>(
    compression: Compression,
    out: W,
) -> io::Result<Box<dyn Finish<W>>> {
    Ok(match compression {
        Compression::None => Box::new(Plain(out)),
        Compression::Gzip => Box::new(ParallelGzip::new(out, workers())),
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(out, 1)?;
            // A frame checksum: a damaged archive without its .sha256 is still caught.
            e.include_checksum(true)?;
            let n = workers();
            if n > 1 {
                e.multithread(u32::try_from(n).unwrap_or(2))?;
                // Jobs of 1 MiB instead of 2: half the buffers in flight, the same speed.
                e.set_parameter(zstd::stream::raw::CParameter::JobSize(1 << 20))?;
            }
            Box::new(Zstd(e))
        }
    })
}

type Job = (u64, Vec<u8>);
/// A compressed member, and the input buffer back for reuse.
type Done = (u64, io::Result<Vec<u8>>, Vec<u8>);

/// One gzip member of `data`: compressed, or stored when compressing does not make it smaller.
fn member(data: &[u8]) -> io::Result<Vec<u8>> {
    let packed = gzip_member(data, Level::new(GZIP_LEVEL))?;
    if packed.len() < data.len() {
        return Ok(packed);
    }
    gzip_member(data, Level::none())
}

fn gzip_member(data: &[u8], level: Level) -> io::Result<Vec<u8>> {
    // Room for stored data and the headers: the buffer never grows while compressing.
    let bound = data.len() + data.len() / 64 + 64;
    let mut e = GzEncoder::new(Vec::with_capacity(bound), level);
    e.write_all(data)?;
    e.finish()
}

/// gzip members compressed by a pool of threads, written in order.
pub struct ParallelGzip<W: Write> {
    out: W,
    block: Vec<u8>,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    /// Sequence number of the next block to hand out, and of the next to write.
    next_in: u64,
    next_out: u64,
    ready: BTreeMap<u64, Vec<u8>>,
    max_in_flight: u64,
    /// Input buffers to reuse.
    spare: Vec<Vec<u8>>,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, workers: usize) -> Self {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let threads = (0..workers.max(1))
            .map(|_| {
                let rx = Arc::clone(&job_rx);
                let tx = done_tx.clone();
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok((seq, data)) = job else { return };
                        let result = member(&data);
                        if tx.send((seq, result, data)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        ParallelGzip {
            out,
            block: Vec::with_capacity(BLOCK),
            jobs: Some(job_tx),
            done: done_rx,
            threads,
            next_in: 0,
            next_out: 0,
            ready: BTreeMap::new(),
            // Each worker busy and one block waiting: more would only hold memory.
            max_in_flight: workers.max(1) as u64 + 1,
            spare: Vec::new(),
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let mut fresh = self.spare.pop().unwrap_or_default();
        fresh.clear();
        fresh.reserve(BLOCK);
        let data = std::mem::replace(&mut self.block, fresh);
        if let Some(jobs) = &self.jobs {
            jobs.send((self.next_in, data))
                .map_err(|_| io::Error::other("a compression thread stopped"))?;
        }
        self.next_in += 1;
        while self.next_in - self.next_out > self.max_in_flight {
            self.receive_one()?;
        }
        // Write whatever is already done, without waiting.
        while let Ok(done) = self.done.try_recv() {
            self.take(done)?;
        }
        self.write_ready()
    }

    fn receive_one(&mut self) -> io::Result<()> {
        let done = self
            .done
            .recv()
            .map_err(|_| io::Error::other("a compression thread stopped"))?;
        self.take(done)?;
        self.write_ready()
    }

    fn take(&mut self, (seq, result, input): Done) -> io::Result<()> {
        if self.spare.len() < 2 {
            self.spare.push(input);
        }
        self.ready.insert(seq, result?);
        Ok(())
    }

    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(data) = self.ready.remove(&self.next_out) {
            self.out.write_all(&data)?;
            self.next_out += 1;
        }
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            let room = BLOCK - self.block.len();
            let take = room.min(buf.len());
            self.block.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.block.len() == BLOCK {
                self.submit()?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send> Finish<W> for ParallelGzip<W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        // An empty input still makes one (empty) gzip member: a valid gzip file.
        if !self.block.is_empty() || self.next_in == 0 {
            self.submit()?;
        }
        while self.next_out < self.next_in {
            self.receive_one()?;
        }
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.out.flush()?;
        // Dropping the rest closes the (already closed) job channel; the threads have ended.
        Ok(self.out)
    }
}

/// What an archive file is compressed with, by its first bytes.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The compression of what `input` reads, by its first bytes, and a reader of all of it.
pub fn sniff<'a, R: Read + Send + 'a>(
    mut input: R,
) -> io::Result<(Compression, impl Read + Send + 'a)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((
        detect(&head[..n]),
        io::Cursor::new(head[..n].to_vec()).chain(input),
    ))
}

/// A reader of the tar inside `input`, compressed with `compression`.
pub fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    input: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            input,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| u8::try_from((i * 7 + i / 3000) % 251).unwrap())
            .collect()
    }

    fn round_trip(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut e = encoder(c, Vec::new()).unwrap();
        for piece in data.chunks(70_000) {
            e.write_all(piece).unwrap();
        }
        let packed = e.finish().unwrap();
        assert_eq!(detect(&packed), c, "{c:?}");
        let mut back = Vec::new();
        decoder(c, packed.as_slice())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn every_compression_round_trips() {
        let data = sample(5 * BLOCK + 12_345);
        for c in [Compression::Gzip, Compression::Zstd] {
            assert_eq!(round_trip(c, &data), data);
        }
        assert_eq!(round_trip(Compression::Gzip, &[]), b"");
    }

    #[test]
    fn incompressible_data_is_stored_not_grown() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..3 * BLOCK + 999)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        let mut e = encoder(Compression::Gzip, Vec::new()).unwrap();
        e.write_all(&data).unwrap();
        let packed = e.finish().unwrap();
        // Stored blocks cost a few bytes per block and member: under 0.1 %.
        assert!(
            packed.len() <= data.len() + data.len() / 1000,
            "{} bytes for {}",
            packed.len(),
            data.len()
        );
        assert_eq!(round_trip(Compression::Gzip, &data), data);
    }

    #[test]
    fn parallel_gzip_is_read_by_gzip() {
        let data = sample(3 * BLOCK + 1);
        let mut e: Box<dyn Finish<Vec<u8>>> = Box::new(ParallelGzip::new(Vec::new(), 3));
        e.write_all(&data).unwrap();
        let packed = e.finish().unwrap();
        let Some(gzip) = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("gzip"))
                .find(|g| g.exists())
        }) else {
            return;
        };
        let mut child = std::process::Command::new(gzip)
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&packed));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }
}
