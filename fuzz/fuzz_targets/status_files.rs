//! Status files under `status/`: FerroLB writes them, but a disk or a person can damage them.
//! Read like any other input: an answer (documents or a reason) for every input, never a
//! panic or a loop.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrolb_cluster::store::each_status_document(data, |_| Ok(()));
});
