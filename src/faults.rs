//! Failpoints for the fault tests, in debug builds only (release builds compile them away):
//! `DSTART_FAILPOINT=NAME[=ACTION][,…]` stops dstart where [`point`]`(NAME)` is reached. ACTION
//! `pause` (the default) prints `dstart: failpoint NAME reached` on stderr and sleeps until the
//! test kills the process (SIGKILL at a known moment); `panic` panics there (an internal error).

use std::io::{self, Read};

/// The failpoint `name`: does what `DSTART_FAILPOINT` asks for it, else nothing.
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var("DSTART_FAILPOINT") {
        for item in spec.split(',') {
            let (point, action) = item.split_once('=').unwrap_or((item, "pause"));
            if point != name {
                continue;
            }
            assert!(action != "panic", "failpoint {name}");
            eprintln!("dstart: failpoint {name} reached");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// A reader that passes failpoint `name` once `after` bytes went through it.
pub struct After<R> {
    inner: R,
    name: &'static str,
    left: Option<u64>,
}

impl<R> After<R> {
    pub fn new(inner: R, name: &'static str, after: u64) -> Self {
        After {
            inner,
            name,
            left: Some(after),
        }
    }
}

impl<R: Read> Read for After<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(left) = self.left {
            let left = left.saturating_sub(n as u64);
            self.left = Some(left);
            if left == 0 {
                self.left = None;
                point(self.name);
            }
        }
        Ok(n)
    }
}
