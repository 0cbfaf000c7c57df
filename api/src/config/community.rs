//! BGP communities as BGPAdvertisements and Community objects write them.
use std::fmt;
use std::str::FromStr;

/// A standard (RFC 1997) or large (RFC 8092) community value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BgpCommunity {
    /// `asn:value`, 16 bits each.
    Standard(u32),
    /// `large:global:local1:local2`, 32 bits each.
    Large(u32, u32, u32),
}

impl FromStr for BgpCommunity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [high, low] => {
                let section = |s: &str| {
                    s.parse::<u16>().map_err(|e| {
                        format!("invalid section {s:?} of community {text:?}: {e}, expected a 16-bit number")
                    })
                };
                Ok(BgpCommunity::Standard(
                    u32::from(section(high)?) << 16 | u32::from(section(low)?),
                ))
            }
            [marker, a, b, c] => {
                if *marker != "large" {
                    return Err(format!(
                        "invalid marker for large community {text:?}: expected large:<uint32>:<uint32>:<uint32>"
                    ));
                }
                let section = |s: &str| {
                    s.parse::<u32>().map_err(|e| {
                        format!("invalid section {s:?} of community {text:?}: {e}, expected a 32-bit number")
                    })
                };
                Ok(BgpCommunity::Large(section(a)?, section(b)?, section(c)?))
            }
            _ => Err(format!(
                "invalid community format {text:?}: expected <uint16>:<uint16>, large:<uint32>:<uint32>:<uint32> or a Community alias"
            )),
        }
    }
}

impl fmt::Display for BgpCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BgpCommunity::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xffff),
            BgpCommunity::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_round_trips() {
        assert_eq!(
            "65000:100".parse(),
            Ok(BgpCommunity::Standard(65000 << 16 | 100))
        );
        assert_eq!(
            "large:4200000000:1:2".parse(),
            Ok(BgpCommunity::Large(4_200_000_000, 1, 2))
        );
        for text in ["65000:100", "large:1:2:3", "0:0"] {
            assert_eq!(text.parse::<BgpCommunity>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn rejects_out_of_range_and_malformed() {
        for bad in [
            "65536:1",
            "1:-1",
            "big:1:2:3",
            "large:1:2:4294967296",
            "1:2:3",
            "alias",
            "",
        ] {
            assert!(bad.parse::<BgpCommunity>().is_err(), "{bad}");
        }
    }
}
