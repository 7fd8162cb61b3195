//! Whether a tar stream arrived whole: [`Watched`] follows the structure of the bytes that pass
//! through it (headers, data, the two zero blocks of the end of the archive) without copying
//! them, so that a stream that ends early, even cleanly at a member boundary, is told from a
//! complete one. The engine also says what the archived path is (the `X-Docker-Container-Path-Stat`
//! header of the archive endpoint): the first member must be that path.

use std::io::{self, Read};

const BLOCK: usize = 512;

/// What the engine reported about the archived path.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: the directory bit is 1 << 31.
    pub mode: u32,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a header; bytes of it collected so far.
    Header,
    /// Data bytes of the current member still to come (block padding included).
    Data(u64),
    /// Zero blocks seen at the end.
    End(u32),
}

/// The tar structure of a stream, followed block by block.
#[derive(Debug)]
pub struct TarEnd {
    state: State,
    block: Vec<u8>,
    /// Members (meta headers not counted).
    pub members: u64,
    /// `size=` of a PAX header, for the member that follows.
    pax_size: Option<u64>,
    /// Collecting the data of a PAX header (its records are needed for `size=`).
    pax_data: Option<Vec<u8>>,
    /// Sparse extension headers still to come.
    sparse_ext: bool,
    /// Name, type flag and size of the first member.
    first: Option<(String, u8, u64)>,
    /// Set once the stream is known to be broken.
    broken: Option<String>,
}

impl Default for TarEnd {
    fn default() -> Self {
        TarEnd {
            state: State::Header,
            block: Vec::with_capacity(BLOCK),
            members: 0,
            pax_size: None,
            pax_data: None,
            sparse_ext: false,
            first: None,
            broken: None,
        }
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256.
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

impl TarEnd {
    /// Follows `bytes`, the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.broken.is_none() {
            match self.state {
                State::Data(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    if let Some(pax) = &mut self.pax_data {
                        pax.extend_from_slice(&bytes[..n]);
                    }
                    bytes = &bytes[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        if let Some(pax) = self.pax_data.take() {
                            self.pax_size = pax_size(&pax);
                        }
                        State::Header
                    } else {
                        State::Data(left)
                    };
                }
                State::Header | State::End(_) => {
                    let n = (BLOCK - self.block.len()).min(bytes.len());
                    self.block.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.block.len() == BLOCK {
                        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
                        self.header(&block);
                    }
                }
            }
        }
    }

    fn header(&mut self, h: &[u8]) {
        let zero = h.iter().all(|b| *b == 0);
        match (self.state, zero) {
            (State::End(n), true) => self.state = State::End(n + 1),
            (State::End(_), false) => {
                // Data after the end: a reader that stops at the first zero block would lose it.
                self.broken = Some("it has data after its end-of-archive block".into());
            }
            (_, true) => self.state = State::End(1),
            (_, false) if self.sparse_ext => {
                self.sparse_ext = h[504] != 0;
            }
            (_, false) => self.member(h),
        }
    }

    fn member(&mut self, h: &[u8]) {
        let computed: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        let Some(recorded) = octal(&h[148..156]) else {
            self.broken = Some("a member header is damaged".into());
            return;
        };
        if recorded != u64::from(computed) {
            self.broken = Some("a member header is damaged (checksum mismatch)".into());
            return;
        }
        let kind = h[156];
        let Some(size) = octal(&h[124..136]) else {
            self.broken = Some("a member header has a damaged size".into());
            return;
        };
        let meta = matches!(kind, b'x' | b'g' | b'L' | b'K');
        // Links, devices, directories and FIFOs have no data whatever their size field says.
        let size = match kind {
            b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => 0,
            _ if meta => size,
            _ => self.pax_size.take().unwrap_or(size),
        };
        if meta {
            if kind == b'x' && size < (1 << 20) {
                self.pax_data = Some(Vec::new());
            }
        } else {
            self.members += 1;
            if self.first.is_none() {
                let field = |r: std::ops::Range<usize>| {
                    let f = &h[r];
                    let end = f.iter().position(|b| *b == 0).unwrap_or(f.len());
                    String::from_utf8_lossy(&f[..end]).into_owned()
                };
                let (name, prefix) = (field(0..100), field(345..500));
                let name = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                self.first = Some((name, kind, size));
            }
            self.sparse_ext = kind == b'S' && h[482] != 0;
        }
        self.state = if size == 0 {
            if let Some(pax) = self.pax_data.take() {
                self.pax_size = pax_size(&pax);
            }
            State::Header
        } else {
            State::Data(padded(size))
        };
    }

    /// Whether the stream seen is a whole tar archive; `stat` (the engine's word about the
    /// archived path) must agree with its first member. The error says what is wrong.
    pub fn finish(&self, stat: Option<&PathStat>) -> Result<u64, String> {
        if let Some(b) = &self.broken {
            return Err(b.clone());
        }
        match self.state {
            State::End(n) if n >= 2 && self.block.is_empty() => {}
            _ if self.members == 0 && self.block.is_empty() && self.state == State::Header => {
                return Err("the tar stream is empty".into());
            }
            _ => {
                return Err(format!(
                    "the tar stream ended before its end-of-archive blocks, after {} members",
                    self.members
                ));
            }
        }
        if let Some(stat) = stat {
            let Some((name, kind, size)) = &self.first else {
                return Err(format!(
                    "the engine reported `{}`, but the tar stream has no member",
                    stat.name
                ));
            };
            let first = name.trim_start_matches("./").trim_end_matches('/');
            let top = first.split('/').next().unwrap_or_default();
            let agrees = top == stat.name
                && if stat.is_dir() {
                    *kind == b'5'
                } else {
                    u64::try_from(stat.size).ok() == Some(*size)
                        || kind.is_ascii_digit() && *kind != b'0'
                };
            if !agrees {
                return Err(format!(
                    "the tar stream does not match what the engine reported for the path (`{}`, {} bytes{})",
                    stat.name,
                    stat.size,
                    if stat.is_dir() { ", a directory" } else { "" }
                ));
            }
        }
        Ok(self.members)
    }
}

/// The `size` record of PAX extended header data.
fn pax_size(data: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|l| {
        let (_, rec) = l.split_once(' ')?;
        rec.strip_prefix("size=")?.parse().ok()
    })
}

/// A reader that follows the tar structure of what is read through it.
#[derive(Debug)]
pub struct Watched<R> {
    inner: R,
    pub end: TarEnd,
}

impl<R: Read> Watched<R> {
    pub fn new(inner: R) -> Self {
        Watched {
            inner,
            end: TarEnd::default(),
        }
    }

    /// Reads the rest (what a tar reader leaves after the first zero block) and says whether
    /// the whole was a complete archive.
    pub fn finish(mut self, stat: Option<&PathStat>) -> io::Result<u64> {
        io::copy(&mut self, &mut io::sink())?;
        self.end.finish(stat).map_err(incomplete)
    }
}

/// The error of an incomplete tar stream.
pub fn incomplete(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, Incomplete(why))
}

/// A tar stream that is not whole.
#[derive(Debug)]
pub struct Incomplete(pub String);

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the archive is incomplete: {}", self.0)
    }
}

impl std::error::Error for Incomplete {}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.end.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: usize, big: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "data/", io::empty()).unwrap();
        for i in 0..members {
            let body = vec![b'x'; if big { 70_000 } else { 10 + i }];
            let mut h = tar::Header::new_ustar();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            let name = format!("data/{}/{i}", "long".repeat(40));
            b.append_data(&mut h, name, body.as_slice()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn watch(bytes: &[u8], piece: usize) -> TarEnd {
        let mut end = TarEnd::default();
        for p in bytes.chunks(piece) {
            end.feed(p);
        }
        end
    }

    #[test]
    fn only_a_whole_archive_is_complete() {
        let dir = PathStat {
            name: "data".into(),
            size: 4096,
            mode: (1 << 31) | 0o755,
        };
        for big in [false, true] {
            let tar = tar_of(7, big);
            for piece in [1, 511, 4096, usize::MAX] {
                assert_eq!(watch(&tar, piece).finish(Some(&dir)), Ok(8), "{piece}");
            }
            // Cut anywhere: at member boundaries (a clean end of the stream), inside headers,
            // inside data, inside the end blocks.
            let mut cuts: Vec<usize> = (0..tar.len()).step_by(509).collect();
            cuts.extend([
                0,
                512,
                1024,
                tar.len() - 1024,
                tar.len() - 512,
                tar.len() - 1,
            ]);
            for cut in cuts {
                let e = watch(&tar[..cut], 4096).finish(Some(&dir)).unwrap_err();
                assert!(
                    e.contains("ended before") || e.contains("empty"),
                    "{cut}: {e}"
                );
            }
            // A clean end at the boundary of the third member, with the end blocks the stream
            // lacked appended by nobody: incomplete.
            let other = PathStat {
                name: "other".into(),
                ..dir.clone()
            };
            assert!(
                watch(&tar, 4096)
                    .finish(Some(&other))
                    .unwrap_err()
                    .contains("does not match")
            );
        }
        // Data after the end blocks.
        let mut tar = tar_of(1, false);
        tar.extend_from_slice(&tar_of(1, false));
        assert!(
            watch(&tar, 4096)
                .finish(None)
                .unwrap_err()
                .contains("after its end")
        );
        // A damaged header.
        let mut tar = tar_of(1, false);
        tar[600] ^= 0x55;
        assert!(
            watch(&tar, 4096)
                .finish(None)
                .unwrap_err()
                .contains("damaged")
        );
    }

    #[test]
    fn pax_sizes_and_files() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o600);
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let file = PathStat {
            name: "f".into(),
            size: 3,
            mode: 0o600,
        };
        assert_eq!(watch(&tar, 7).finish(Some(&file)), Ok(1));
        let wrong = PathStat { size: 4, ..file };
        assert!(watch(&tar, 7).finish(Some(&wrong)).is_err());
        assert_eq!(
            pax_size(b"20 size=123456789\n30 path=x\n"),
            Some(123_456_789)
        );
    }
}
