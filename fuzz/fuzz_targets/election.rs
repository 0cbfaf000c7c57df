//! The layer 2 election on any objects a store can hold: never a panic, and every speaker
//! reaches the same order (each computes it alone).
#![no_main]
use ferrolb_api::config::{Config, ConfigObjects};
use ferrolb_api::objects::{Detail, Object};
use ferrolb_speaker::plan::election::{Inputs, Speaker, elect};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};

fuzz_target!(|data: &[u8]| {
    let Some((&live, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let objects: Vec<Object> = Object::decode_yaml_stream_as(text, Detail::Speaker).into_iter().filter_map(|(_, o)| o.ok()).collect();
    let Ok(config) = Config::build(&ConfigObjects::from_objects(&objects, "metallb-system")) else { return };
    // Which of n1..n4 are live, and on which interfaces, from the first byte.
    let speakers: BTreeMap<String, Speaker> = (0..4)
        .filter(|i| live & (1 << i) != 0)
        .map(|i| {
            let interfaces = (live & (1 << (i + 4)) != 0).then(|| BTreeSet::from(["eth0".to_string()]));
            (format!("n{}", i + 1), Speaker { interfaces })
        })
        .collect();
    let orders: Vec<Vec<Vec<String>>> = speakers
        .keys()
        .map(|me| {
            elect(&Inputs::new(&objects, &config, &speakers, me, None))
                .into_iter()
                .map(|d| d.order)
                .collect()
        })
        .collect();
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "speakers disagree: {orders:?}");
});
