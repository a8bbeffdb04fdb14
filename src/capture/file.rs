//! One capture file (or standard input) as a [`Source`].

use super::frames::FrameReader;
use super::{Frame, Next, Source};
use crate::error::Error;
use std::path::Path;

pub struct FileSource {
    input: FrameReader,
    if_id: u32,
    /// Size of the file on disk (0 for standard input).
    size: u64,
    errors: Vec<String>,
}

impl FileSource {
    /// Opens a pcap or pcapng file, plain, gzip or zstd; `-` reads standard
    /// input. `if_id` tells its frames apart from other inputs'.
    pub fn open(path: &Path, filter: Option<&str>, if_id: u32) -> Result<FileSource, Error> {
        let input = FrameReader::open(path, filter)?;
        let size = if super::frames::is_stdin(path) { 0 } else { std::fs::metadata(path).map_or(0, |m| m.len()) };
        Ok(FileSource { input, if_id, size, errors: Vec::new() })
    }
}

impl Source for FileSource {
    /// A read error (a file cut off mid-record, a corrupt record header) ends
    /// this file; it is recorded once, then the file reads as ended.
    #[inline]
    fn next<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T> {
        let if_id = self.if_id;
        match self.input.next_frame(|f| visit(Frame { if_id, ..f })) {
            Ok(Some(t)) => Next::Frame(t),
            Ok(None) => Next::End,
            Err(e) => {
                self.errors.push(e.to_string());
                Next::End
            }
        }
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn progress(&self) -> (u64, u64) {
        (self.input.consumed().min(self.size), self.size)
    }
}
