//! Readers that run beside the one that consumes them: [`ReadAhead`] reads on a thread of its
//! own, [`Growing`] follows a file that another process is still writing.

use std::fs::File;
use std::io::{self, Read};

use super::hashing::HASH_BLOCK;
use super::hashing::HASH_QUEUE;
use super::store;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 7 % 251).unwrap())
            .collect()
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
