//! Files users write into the store: decoded and validated, never a panic; a speaker's slim
//! records go back to JSON (as status merges do) and decode to the same records.
#![no_main]
use ferrolb_api::config::{Config, ConfigObjects};
use ferrolb_api::objects::{Detail, Object};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let objects: Vec<Object> = Object::decode_yaml_stream(text).into_iter().filter_map(|(_, o)| o.ok()).collect();
    let _ = Config::build(&ConfigObjects::from_objects(&objects, "metallb-system"));
    let _ = ferrolb_api::legacy::convert_configmap_yaml(text);
    for object in objects {
        let slim = object.kept_as(Detail::Speaker);
        let json = slim.to_json().expect("a slim record has a JSON form");
        let again = Object::decode(json).expect("a slim record's JSON decodes").kept_as(Detail::Speaker);
        assert_eq!(again, slim);
    }
});
