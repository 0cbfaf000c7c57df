//! BFDProfile: ranges and defaults as MetalLB's CRD defines them.
use super::*;

impl Builder<'_> {
    pub(super) fn bfd_profiles(&mut self) -> BTreeMap<String, BfdProfile> {
        let mut seen = BTreeSet::new();
        let mut profiles = BTreeMap::new();
        for object in by_name(&self.objects.bfd_profiles) {
            let name = object.name_any();
            if !self.claim_name(BFD, &name, &mut seen) {
                continue;
            }
            let spec = &object.spec;
            let before = self.errors.len();
            let mut field =
                |field: &str, value: Option<u32>, min: u32, max: u32, default: u32| match value {
                    Some(v) if !(min..=max).contains(&v) => {
                        self.errors.push(ConfigError::new(
                            BFD,
                            &name,
                            format!("spec.{field}"),
                            format!("invalid value {v}, must be in {min}-{max} range"),
                        ));
                        default
                    }
                    Some(v) => v,
                    None => default,
                };
            let profile = BfdProfile {
                name: name.clone(),
                receive_interval_ms: field(
                    "receiveInterval",
                    spec.receive_interval,
                    10,
                    60_000,
                    300,
                ),
                transmit_interval_ms: field(
                    "transmitInterval",
                    spec.transmit_interval,
                    10,
                    60_000,
                    300,
                ),
                detect_multiplier: field("detectMultiplier", spec.detect_multiplier, 2, 255, 3),
                echo_interval_ms: field("echoInterval", spec.echo_interval, 10, 60_000, 50),
                minimum_ttl: field("minimumTtl", spec.minimum_ttl, 1, 254, 254),
                echo_mode: spec.echo_mode.unwrap_or(false),
                passive_mode: spec.passive_mode.unwrap_or(false),
            };
            if self.errors.len() == before {
                profiles.insert(name, profile);
            }
        }
        profiles
    }
}
