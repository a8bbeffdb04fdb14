//! Packet sources. Offline files are read through libpcap (pcap and pcapng);
//! several files are merged in timestamp order, like `mergecap`.

use crate::decode::{self, DecodeStats, Kind, Skip, Summary};
use crate::error::Error;
use pcap::{Capture, Offline, Precision};
use std::path::{Path, PathBuf};

/// One capture file being read.
pub struct FileSource {
    path: PathBuf,
    cap: Capture<Offline>,
    linktype: i32,
    /// Frames read from this file.
    pub frames: u64,
    done: bool,
}

/// What one read produced.
pub enum Read {
    /// A frame: its timestamp and what decoding made of it.
    Frame(Result<Kind, Skip>),
    Eof,
}

impl FileSource {
    pub fn open(path: &Path, filter: Option<&str>) -> Result<FileSource, Error> {
        if !path.exists() {
            return Err(Error::Open { path: path.into(), reason: "no such file".into() });
        }
        let mut cap = Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| classify_open(path, e))?;
        if let Some(f) = filter {
            cap.filter(f, true).map_err(|e| Error::Filter { filter: f.into(), reason: strip(&e.to_string()) })?;
        }
        let linktype = cap.get_datalink().0;
        Ok(FileSource { path: path.into(), cap, linktype, frames: 0, done: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Reads and decodes the next frame into `out` (setting `ts` and
    /// `frame_len`). A read error (a file cut off mid-record, a corrupt record
    /// header) ends this file; it is returned once, then the file reads as ended.
    pub fn next(&mut self, out: &mut Summary, stats: &mut DecodeStats) -> Result<Read, String> {
        if self.done {
            return Ok(Read::Eof);
        }
        match self.cap.next_packet() {
            Ok(p) => {
                self.frames += 1;
                out.ts =
                    (p.header.ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(p.header.ts.tv_usec as u64);
                out.frame_len = p.header.len;
                stats.frames += 1;
                stats.bytes += p.header.len as u64;
                let r = decode::decode(self.linktype, p.data, out);
                stats.count(r);
                Ok(Read::Frame(r))
            }
            Err(pcap::Error::NoMorePackets) => {
                self.done = true;
                Ok(Read::Eof)
            }
            Err(e) => {
                self.done = true;
                Err(format!(
                    "{}: capture cut off or corrupt after {} frames ({}); results cover the frames before it",
                    self.path.display(),
                    self.frames,
                    strip(&e.to_string())
                ))
            }
        }
    }
}

fn strip(s: &str) -> String {
    s.trim_start_matches("libpcap error: ").to_string()
}

fn classify_open(path: &Path, e: pcap::Error) -> Error {
    let msg = strip(&e.to_string());
    let lower = msg.to_lowercase();
    if lower.contains("unknown file format")
        || lower.contains("bad dump file")
        || lower.contains("truncated")
        || lower.contains("not a")
    {
        Error::NotACapture { path: path.into(), reason: msg }
    } else if lower.contains("permission denied") {
        Error::Open { path: path.into(), reason: "permission denied".into() }
    } else if lower.contains("is a directory") {
        Error::Open { path: path.into(), reason: "it is a directory".into() }
    } else {
        Error::Open { path: path.into(), reason: msg }
    }
}

/// Several files read as one stream in timestamp order; frame numbers run on
/// across files in that order.
pub struct Merged {
    files: Vec<FileSource>,
    /// The next decoded frame of each file, waiting its turn.
    heads: Vec<Option<(Summary, Result<Kind, Skip>)>>,
    next_frame: u64,
    pub errors: Vec<String>,
}

impl Merged {
    pub fn new(files: Vec<FileSource>) -> Merged {
        let n = files.len();
        Merged { files, heads: vec![None; n], next_frame: 1, errors: Vec::new() }
    }

    fn fill(&mut self, i: usize, stats: &mut DecodeStats) {
        if self.heads[i].is_some() {
            return;
        }
        let mut s = Summary::default();
        match self.files[i].next(&mut s, stats) {
            Ok(Read::Frame(r)) => self.heads[i] = Some((s, r)),
            Ok(Read::Eof) => {}
            Err(e) => self.errors.push(e),
        }
    }

    /// The next frame of the merged stream: its decoded summary (valid when
    /// the result is `Ok`), or `None` at the end of every file.
    #[inline]
    pub fn next(&mut self, stats: &mut DecodeStats) -> Option<(Summary, Result<Kind, Skip>)> {
        let pick = if self.files.len() == 1 {
            // The common case needs no lookahead.
            let mut s = Summary::default();
            match self.files[0].next(&mut s, stats) {
                Ok(Read::Frame(r)) => Some((s, r)),
                Ok(Read::Eof) => None,
                Err(e) => {
                    self.errors.push(e);
                    None
                }
            }
        } else {
            for i in 0..self.files.len() {
                self.fill(i, stats);
            }
            let i = (0..self.heads.len())
                .filter(|&i| self.heads[i].is_some())
                .min_by_key(|&i| self.heads[i].unwrap().0.ts)?;
            self.heads[i].take()
        };
        pick.map(|(mut s, r)| {
            s.frame = self.next_frame;
            self.next_frame += 1;
            (s, r)
        })
    }
}
