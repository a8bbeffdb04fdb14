//! Several sources read as one stream in timestamp order, like `mergecap`.

use super::{Frame, Next, Source};

/// A source's next frame, copied out so it can wait its turn.
#[derive(Default)]
struct Head {
    ts: u64,
    if_id: u32,
    linktype: i32,
    orig_len: u32,
    /// Reused from frame to frame: no allocation once it has grown.
    data: Vec<u8>,
    full: bool,
    ended: bool,
}

pub struct Merged<S: Source> {
    sources: Vec<S>,
    heads: Vec<Head>,
    errors: Vec<String>,
}

impl<S: Source> Merged<S> {
    pub fn new(sources: Vec<S>) -> Merged<S> {
        let heads = sources.iter().map(|_| Head::default()).collect();
        Merged { sources, heads, errors: Vec::new() }
    }

    fn fill(&mut self, i: usize) {
        let h = &mut self.heads[i];
        if h.full || h.ended {
            return;
        }
        let got = self.sources[i].next(|f| {
            h.ts = f.ts;
            h.if_id = f.if_id;
            h.linktype = f.linktype;
            h.orig_len = f.orig_len;
            h.data.clear();
            h.data.extend_from_slice(f.data);
        });
        match got {
            Next::Frame(()) => h.full = true,
            // Offline files never idle; a merged live source ticks on its own.
            Next::Tick(_) => {}
            Next::End => {
                h.ended = true;
                self.errors.extend_from_slice(self.sources[i].errors());
            }
        }
    }
}

impl<S: Source> Source for Merged<S> {
    #[inline]
    fn next<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T> {
        if self.sources.len() == 1 {
            // The common case needs no lookahead and no copy.
            return self.sources[0].next(visit);
        }
        for i in 0..self.sources.len() {
            self.fill(i);
        }
        // Earliest first; on a tie, the input given first.
        let Some(i) = (0..self.heads.len()).filter(|&i| self.heads[i].full).min_by_key(|&i| self.heads[i].ts) else {
            return Next::End;
        };
        let h = &mut self.heads[i];
        h.full = false;
        Next::Frame(visit(Frame {
            ts: h.ts,
            if_id: h.if_id,
            linktype: h.linktype,
            orig_len: h.orig_len,
            data: &h.data,
        }))
    }

    fn errors(&self) -> &[String] {
        // A source's errors are gathered when it ends, in the order they happened.
        if self.sources.len() == 1 { self.sources[0].errors() } else { &self.errors }
    }

    fn progress(&self) -> (u64, u64) {
        self.sources.iter().map(|s| s.progress()).fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
    }
}
