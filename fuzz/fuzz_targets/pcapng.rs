//! The pcapng reader on arbitrary bytes: no panic, no runaway allocation, and
//! an error or the end of the stream is final. Seed it with real files:
//! `mkdir -p fuzz/corpus/pcapng && cp fixtures/pcapng/*.pcapng fixtures/corpus/*/*.pcapng fuzz/corpus/pcapng/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wirestat::capture::pcapng::{MAX_BLOCK, PcapngReader};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = PcapngReader::new(data) else { return };
    loop {
        match r.next_frame() {
            Ok(Some(f)) => assert!(f.data.len() < MAX_BLOCK as usize),
            Ok(None) | Err(_) => break,
        }
    }
    assert!(matches!(r.next_frame(), Ok(None)));
    assert!(r.offset() <= data.len() as u64);
});
