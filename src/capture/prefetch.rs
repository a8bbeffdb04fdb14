//! Reading ahead on a helper thread, so that decompressing a capture runs
//! beside the thread that parses and decodes it rather than inside it.
//!
//! The helper stops by itself: at the end of its input, after an error (which
//! the reader gets in order, after every byte before it), or as soon as the
//! reader is dropped, because its next hand-over then fails. It is never
//! joined, so a helper blocked reading standard input cannot hold up exit.

use crossbeam_channel::{Receiver, Sender, bounded};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Bytes handed over at a time: few hand-overs, still cache-friendly.
const CHUNK: usize = 256 << 10;
/// Chunks ready ahead of the reader: enough to ride out a slow read.
const DEPTH: usize = 4;

/// The reading end: a `Read` over what the helper thread read.
pub struct Prefetch {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied chunks go back to the helper, which then allocates none.
    spent: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Prefetch {
    /// Starts a helper thread reading `inner` ahead.
    pub fn spawn(inner: Box<dyn Read + Send>, name: &str) -> io::Result<Prefetch> {
        let (tx, chunks) = bounded(DEPTH);
        let (spent, spares) = bounded(DEPTH + 1);
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let mut inner = inner;
            // A panicking reader is a read error, not an end that looks clean.
            if catch_unwind(AssertUnwindSafe(|| pump(&mut inner, &tx, &spares))).is_err() {
                let _ = tx.send(Err(io::Error::other("the decompressor failed (panicked)")));
            }
        })?;
        Ok(Prefetch { chunks, spent, current: Vec::new(), pos: 0, done: false })
    }
}

/// The helper's loop: fills chunks and hands them over until the input ends,
/// fails, or nobody takes them any more.
fn pump(inner: &mut dyn Read, tx: &Sender<io::Result<Vec<u8>>>, spares: &Receiver<Vec<u8>>) {
    loop {
        let mut buf = spares.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let mut error = None;
        while filled < CHUNK {
            match inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let end = filled < CHUNK;
        buf.truncate(filled);
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        if let Some(e) = error {
            let _ = tx.send(Err(e));
            return;
        }
        if end {
            return;
        }
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            let spent = std::mem::take(&mut self.current);
            if spent.capacity() > 0 {
                // Full means the helper has spares enough (or is gone).
                let _ = self.spent.try_send(spent);
            }
            self.pos = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The helper ended at the end of its input.
                Err(_) => self.done = true,
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `len` bytes of a pattern, `step` at a time, then an error if asked.
    struct Source {
        at: usize,
        len: usize,
        step: usize,
        fail: bool,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.len {
                return if self.fail { Err(io::Error::other("broken")) } else { Ok(0) };
            }
            let n = buf.len().min(self.step).min(self.len - self.at);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.at + i) % 251) as u8;
            }
            self.at += n;
            Ok(n)
        }
    }

    fn source(len: usize, step: usize, fail: bool) -> Box<dyn Read + Send> {
        Box::new(Source { at: 0, len, step, fail })
    }

    #[test]
    fn yields_every_byte_in_order() {
        for (len, step) in [(0, 1), (1, 1), (CHUNK, 4096), (3 * CHUNK + 17, 100_000), (5 * CHUNK, CHUNK)] {
            let mut p = Prefetch::spawn(source(len, step, false), "test").unwrap();
            let mut out = Vec::new();
            p.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), len);
            assert!(out.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "{len}");
            assert_eq!(p.read(&mut [0; 8]).unwrap(), 0);
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let mut p = Prefetch::spawn(source(CHUNK + 1000, 7000, true), "test").unwrap();
        let mut out = vec![0u8; CHUNK + 1000];
        p.read_exact(&mut out).unwrap();
        assert_eq!(p.read(&mut [0; 8]).unwrap_err().to_string(), "broken");
        // Then the end, for good.
        assert_eq!(p.read(&mut [0; 8]).unwrap(), 0);
    }

    #[test]
    fn a_panic_is_an_error() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("decoder bug")
            }
        }
        let mut p = Prefetch::spawn(Box::new(Panics), "test").unwrap();
        assert!(p.read(&mut [0; 8]).unwrap_err().to_string().contains("panicked"));
    }

    #[test]
    fn the_helper_stops_when_the_reader_is_dropped() {
        /// Endless input, which says when the helper has let go of it.
        struct Endless(Arc<AtomicBool>);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
        }
        impl Drop for Endless {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let released = Arc::new(AtomicBool::new(false));
        let mut p = Prefetch::spawn(Box::new(Endless(released.clone())), "test").unwrap();
        p.read_exact(&mut [0; 1000]).unwrap();
        drop(p);
        for _ in 0..500 {
            if released.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the helper still runs 5 s after the reader was dropped");
    }
}
