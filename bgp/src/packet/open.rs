//! OPEN (RFC 4271 4.2), with its optional parameters in both layouts: the classic one (one
//! byte of length each) and RFC 9072's extended one (two bytes), which a sender uses when the
//! parameters would not fit in 255 bytes.
use super::capability::{Capability, Family};
use super::error::{Notify, subcode};
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u32};
use std::net::Ipv4Addr;

/// The only optional parameter type still in use (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;
/// In the classic length byte and the first parameter type: the extended layout follows.
const EXTENDED: u8 = 255;
/// AS_TRANS (RFC 6793): the 2-octet AS a 4-octet speaker puts in My Autonomous System.
pub const AS_TRANS: u16 = 23456;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// My Autonomous System as sent: AS_TRANS when the real AS needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub identifier: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn` (4 octets: the 2-octet field says AS_TRANS when it must, and the
    /// 4-octet AS capability is always sent).
    pub fn new(
        asn: u32,
        hold_time: u16,
        identifier: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Open {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            identifier,
            capabilities,
        }
    }

    /// The sender's AS: from the 4-octet AS capability when present.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// The families announced with the multiprotocol capability; IPv4 unicast when none are
    /// (RFC 4760: a speaker without the capability does IPv4 unicast).
    pub fn families(&self) -> Vec<Family> {
        let announced: Vec<Family> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if announced.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            announced
        }
    }

    pub fn decode(body: &[u8]) -> Result<Open, Notify> {
        let header: nom::IResult<&[u8], (u8, u16, u16, u32, u8)> =
            (be_u8, be_u16, be_u16, be_u32, be_u8).parse(body);
        let Ok((rest, (version, my_as, hold_time, identifier, params_len))) = header else {
            return Err(Notify::header(subcode::BAD_MESSAGE_LENGTH, []));
        };
        if version != 4 {
            return Err(Notify::open(
                subcode::UNSUPPORTED_VERSION,
                4u16.to_be_bytes(),
            ));
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(Notify::open(subcode::UNACCEPTABLE_HOLD_TIME, []));
        }
        let extended = params_len == EXTENDED && rest.first() == Some(&EXTENDED);
        let params = if extended {
            let parsed: nom::IResult<&[u8], &[u8]> = (be_u8, be_u16.flat_map(take))
                .map(|(_, params)| params)
                .parse(rest);
            match parsed {
                Ok(([], params)) => decode_params(params, true)?,
                _ => return Err(Notify::open(0, [])),
            }
        } else {
            if rest.len() != usize::from(params_len) {
                return Err(Notify::open(0, []));
            }
            decode_params(rest, false)?
        };
        Ok(Open {
            my_as,
            hold_time,
            identifier: Ipv4Addr::from(identifier),
            capabilities: params,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut params = Vec::new();
        for capability in &self.capabilities {
            let (code, value) = capability.encode();
            // One capability per parameter, as BIRD and FRR send them. A value longer than a
            // byte's length cannot be sent in the classic layout; FerroLB never builds one.
            params.push(PARAM_CAPABILITIES);
            params.push((value.len() + 2) as u8);
            params.push(code);
            params.push(value.len() as u8);
            params.extend_from_slice(&value);
        }
        let mut body = vec![4];
        body.extend_from_slice(&self.my_as.to_be_bytes());
        body.extend_from_slice(&self.hold_time.to_be_bytes());
        body.extend_from_slice(&self.identifier.octets());
        if params.len() < usize::from(EXTENDED) {
            body.push(params.len() as u8);
            body.extend_from_slice(&params);
        } else {
            // RFC 9072: re-lay the parameters with two-byte lengths.
            let mut extended = Vec::new();
            for capability in &self.capabilities {
                let (code, value) = capability.encode();
                extended.push(PARAM_CAPABILITIES);
                extended.extend_from_slice(&((value.len() + 2) as u16).to_be_bytes());
                extended.push(code);
                extended.push(value.len() as u8);
                extended.extend_from_slice(&value);
            }
            body.extend_from_slice(&[EXTENDED, EXTENDED]);
            body.extend_from_slice(&(extended.len() as u16).to_be_bytes());
            body.extend_from_slice(&extended);
        }
        body
    }
}

fn decode_params(mut params: &[u8], extended: bool) -> Result<Vec<Capability>, Notify> {
    let mut capabilities = Vec::new();
    while !params.is_empty() {
        let parsed: nom::IResult<&[u8], (u8, &[u8])> = if extended {
            (be_u8, be_u16.flat_map(take)).parse(params)
        } else {
            (be_u8, be_u8.flat_map(take)).parse(params)
        };
        let Ok((rest, (kind, value))) = parsed else {
            return Err(Notify::open(0, []));
        };
        if kind != PARAM_CAPABILITIES {
            return Err(Notify::open(
                subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                [kind],
            ));
        }
        capabilities.extend(Capability::decode_all(value)?);
        params = rest;
    }
    Ok(capabilities)
}
