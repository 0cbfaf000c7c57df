//! Files users write into the store: decoded and validated, never a panic.
#![no_main]
use ferrolb_api::config::{Config, ConfigObjects};
use ferrolb_api::objects::Object;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let objects: Vec<Object> = Object::decode_yaml_stream(text).into_iter().filter_map(|(_, o)| o.ok()).collect();
    let _ = Config::build(&ConfigObjects::from_objects(&objects, "metallb-system"));
    let _ = ferrolb_api::legacy::convert_configmap_yaml(text);
});
