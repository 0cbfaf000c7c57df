//! Capabilities advertised in OPEN (RFC 5492): the ones FerroLB uses are read into values,
//! any other is kept as bytes and ignored.
use super::error::Notify;
use nom::Parser;
use nom::bytes::complete::take;
use nom::multi::many0;
use nom::number::complete::{be_u8, be_u16};

pub type Afi = u16;
pub type Safi = u8;

pub const AFI_IPV4: Afi = 1;
pub const AFI_IPV6: Afi = 2;
pub const SAFI_UNICAST: Safi = 1;

/// An address family: AFI and SAFI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: AFI_IPV4,
        safi: SAFI_UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: AFI_IPV6,
        safi: SAFI_UNICAST,
    };
}

/// Graceful restart (RFC 4724): the restart flags and time, and per family whether
/// forwarding state was preserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// The R bit: this speaker has restarted.
    pub restarting: bool,
    /// The N bit (RFC 8538): notification messages are handled gracefully too.
    pub notification: bool,
    /// Seconds the peer keeps our routes after the session drops (12 bits).
    pub time: u16,
    pub families: Vec<(Family, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol(Family),
    RouteRefresh,
    /// Code 128: the pre-standard route refresh, still announced by some routers.
    RouteRefreshLegacy,
    EnhancedRouteRefresh,
    /// RFC 8950: NLRI of a family with next hops of another AFI.
    ExtendedNextHop(Vec<(Family, Afi)>),
    GracefulRestart(GracefulRestart),
    FourOctetAs(u32),
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

pub const CODE_MULTIPROTOCOL: u8 = 1;
pub const CODE_ROUTE_REFRESH: u8 = 2;
pub const CODE_EXTENDED_NEXT_HOP: u8 = 5;
pub const CODE_GRACEFUL_RESTART: u8 = 64;
pub const CODE_FOUR_OCTET_AS: u8 = 65;
pub const CODE_ENHANCED_ROUTE_REFRESH: u8 = 70;
pub const CODE_ROUTE_REFRESH_LEGACY: u8 = 128;

fn malformed(code: u8) -> Notify {
    // RFC 5492 gives no subcode for a malformed capability: the unspecific OPEN error.
    Notify::open(0, [code])
}

impl Capability {
    /// Reads the capabilities in one Capabilities optional parameter (one or several, as
    /// routers differ in how they lay them out).
    pub fn decode_all(mut value: &[u8]) -> Result<Vec<Capability>, Notify> {
        let mut out = Vec::new();
        while !value.is_empty() {
            let (rest, (code, body)) = (be_u8, be_u8.flat_map(take))
                .parse(value)
                .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| malformed(0))?;
            out.push(Capability::decode(code, body)?);
            value = rest;
        }
        Ok(out)
    }

    pub fn decode(code: u8, body: &[u8]) -> Result<Capability, Notify> {
        let exact = |len: usize| {
            if body.len() == len {
                Ok(())
            } else {
                Err(malformed(code))
            }
        };
        Ok(match code {
            CODE_MULTIPROTOCOL => {
                exact(4)?;
                Capability::Multiprotocol(Family {
                    afi: u16::from_be_bytes([body[0], body[1]]),
                    safi: body[3],
                })
            }
            CODE_ROUTE_REFRESH => {
                exact(0)?;
                Capability::RouteRefresh
            }
            CODE_ROUTE_REFRESH_LEGACY => {
                exact(0)?;
                Capability::RouteRefreshLegacy
            }
            CODE_ENHANCED_ROUTE_REFRESH => {
                exact(0)?;
                Capability::EnhancedRouteRefresh
            }
            CODE_FOUR_OCTET_AS => {
                exact(4)?;
                Capability::FourOctetAs(u32::from_be_bytes([body[0], body[1], body[2], body[3]]))
            }
            CODE_EXTENDED_NEXT_HOP => {
                if !body.len().is_multiple_of(6) {
                    return Err(malformed(code));
                }
                let tuples = body
                    .chunks_exact(6)
                    .map(|c| {
                        let afi = u16::from_be_bytes([c[0], c[1]]);
                        // The SAFI is two bytes here; only its low byte is ever used.
                        let safi = c[3];
                        (Family { afi, safi }, u16::from_be_bytes([c[4], c[5]]))
                    })
                    .collect();
                Capability::ExtendedNextHop(tuples)
            }
            CODE_GRACEFUL_RESTART => Capability::GracefulRestart(graceful_restart(body)?),
            _ => Capability::Unknown {
                code,
                value: body.to_vec(),
            },
        })
    }

    /// The capability's code and value.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Capability::Multiprotocol(f) => {
                let mut v = f.afi.to_be_bytes().to_vec();
                v.extend_from_slice(&[0, f.safi]);
                (CODE_MULTIPROTOCOL, v)
            }
            Capability::RouteRefresh => (CODE_ROUTE_REFRESH, Vec::new()),
            Capability::RouteRefreshLegacy => (CODE_ROUTE_REFRESH_LEGACY, Vec::new()),
            Capability::EnhancedRouteRefresh => (CODE_ENHANCED_ROUTE_REFRESH, Vec::new()),
            Capability::FourOctetAs(asn) => (CODE_FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
            Capability::ExtendedNextHop(tuples) => {
                let mut v = Vec::with_capacity(tuples.len() * 6);
                for (family, nh_afi) in tuples {
                    v.extend_from_slice(&family.afi.to_be_bytes());
                    v.extend_from_slice(&u16::from(family.safi).to_be_bytes());
                    v.extend_from_slice(&nh_afi.to_be_bytes());
                }
                (CODE_EXTENDED_NEXT_HOP, v)
            }
            Capability::GracefulRestart(gr) => {
                let mut flags = gr.time & 0x0fff;
                if gr.restarting {
                    flags |= 0x8000;
                }
                if gr.notification {
                    flags |= 0x4000;
                }
                let mut v = flags.to_be_bytes().to_vec();
                for (family, forwarding) in &gr.families {
                    v.extend_from_slice(&family.afi.to_be_bytes());
                    v.push(family.safi);
                    v.push(if *forwarding { 0x80 } else { 0 });
                }
                (CODE_GRACEFUL_RESTART, v)
            }
            Capability::Unknown { code, value } => (*code, value.clone()),
        }
    }
}

/// The GR capability in every valid length: the 2-byte helper-only form (no families) and
/// any number of 4-byte family tuples after it.
fn graceful_restart(body: &[u8]) -> Result<GracefulRestart, Notify> {
    type Tuples = Vec<(u16, u8, u8)>;
    let parsed: nom::IResult<&[u8], (u16, Tuples)> =
        (be_u16, many0((be_u16, be_u8, be_u8))).parse(body);
    match parsed {
        Ok(([], (flags, tuples))) => Ok(GracefulRestart {
            restarting: flags & 0x8000 != 0,
            notification: flags & 0x4000 != 0,
            time: flags & 0x0fff,
            families: tuples
                .into_iter()
                .map(|(afi, safi, f)| (Family { afi, safi }, f & 0x80 != 0))
                .collect(),
        }),
        _ => Err(malformed(CODE_GRACEFUL_RESTART)),
    }
}
