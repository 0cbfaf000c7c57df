//! What a speaker tells the others about itself in its gossip metadata: the interfaces it can
//! announce on, each with its MAC address. The interfaces make a node whose link is down stop
//! being a candidate; the MACs let a speaker that sees another MAC claim its IP say which
//! node that is (two nodes that cannot reach each other through gossip both announcing).
use ferrolb_l2::packet::{Mac, format_mac};
use std::collections::{BTreeMap, BTreeSet};

const PREFIX: &str = "ferrolb-l2:";

/// memberlist carries at most this much metadata.
const MAX: usize = 512;

/// A speaker's interfaces, by name, with their MACs when known.
pub type Interfaces = BTreeMap<String, Option<Mac>>;

/// `ferrolb-l2:eth0=aa:bb:cc:dd:ee:ff,eth1=...`. Past memberlist's limit, the MACs are left
/// out, then everything (which reads as "any interface").
pub fn encode(interfaces: &Interfaces) -> Vec<u8> {
    let with_macs: Vec<String> = interfaces
        .iter()
        .map(|(name, mac)| match mac {
            Some(mac) => format!("{name}={}", format_mac(mac)),
            None => name.clone(),
        })
        .collect();
    let names: Vec<&str> = interfaces.keys().map(String::as_str).collect();
    [with_macs.join(","), names.join(",")]
        .into_iter()
        .map(|list| format!("{PREFIX}{list}"))
        .find(|meta| meta.len() <= MAX)
        .unwrap_or_default()
        .into_bytes()
}

/// The interfaces a member says it can announce on; `None` when it does not say (a MetalLB
/// speaker, or a Go memberlist).
pub fn parse(meta: &[u8]) -> Option<Interfaces> {
    let text = std::str::from_utf8(meta).ok()?;
    let list = text.strip_prefix(PREFIX)?;
    Some(
        list.split(',')
            .filter(|s| !s.is_empty())
            .map(|entry| match entry.split_once('=') {
                Some((name, mac)) => (name.to_string(), parse_mac(mac)),
                None => (entry.to_string(), None),
            })
            .collect(),
    )
}

/// The interface names only, as the election wants them.
pub fn names(interfaces: &Interfaces) -> BTreeSet<String> {
    interfaces.keys().cloned().collect()
}

fn parse_mac(text: &str) -> Option<Mac> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    Mac::try_from(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_unknown_metadata_means_any() {
        let interfaces = Interfaces::from([
            ("eth0".to_string(), Some([2, 0, 0, 0, 0, 0x11])),
            ("eth1".to_string(), None),
        ]);
        assert_eq!(parse(&encode(&interfaces)), Some(interfaces));
        assert_eq!(parse(&encode(&Interfaces::new())), Some(Interfaces::new()));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&[0xff, 0xfe]), None);
        // What speakers before the MACs sent still reads.
        assert_eq!(
            parse(b"ferrolb-l2:eth0,eth1").map(|i| names(&i)),
            Some(BTreeSet::from(["eth0".to_string(), "eth1".to_string()]))
        );
        assert_eq!(
            parse(b"ferrolb-l2:eth0=zz").map(|i| i["eth0"]),
            Some(None),
            "a bad MAC is no MAC"
        );
    }

    #[test]
    fn too_many_interfaces_drop_the_macs_then_everything() {
        let many: Interfaces = (0..30)
            .map(|i| (format!("eth{i}"), Some([2, 0, 0, 0, 0, i as u8])))
            .collect();
        let parsed = parse(&encode(&many)).expect("fits without MACs");
        assert_eq!(names(&parsed), names(&many));
        assert!(parsed.values().all(Option::is_none));
        let too_many: Interfaces = (0..200).map(|i| (format!("eth{i}"), None)).collect();
        assert_eq!(encode(&too_many), b"");
    }
}
