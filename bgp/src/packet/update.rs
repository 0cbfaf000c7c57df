//! UPDATE (RFC 4271 4.3) and its path attributes, with MP-BGP (RFC 4760, RFC 2545 next hops,
//! RFC 8950 IPv4 over IPv6 next hops), 4-octet AS (RFC 6793), communities (RFC 1997) and
//! large communities (RFC 8092). Malformed attributes are handled as RFC 7606 says.
use super::capability::{AFI_IPV4, AFI_IPV6, Family, SAFI_UNICAST};
use super::error::{AttributeProblem, Handling, Notify, subcode};
use super::open::AS_TRANS;
use super::prefix::{afi_of, decode_prefixes, encode_prefix, encoded_len};
use super::{Context, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_UPDATE, frame};
use ipnet::IpNet;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const ORIGIN: u8 = 1;
pub const AS_PATH: u8 = 2;
pub const NEXT_HOP: u8 = 3;
pub const MED: u8 = 4;
pub const LOCAL_PREF: u8 = 5;
pub const ATOMIC_AGGREGATE: u8 = 6;
pub const AGGREGATOR: u8 = 7;
pub const COMMUNITIES: u8 = 8;
pub const MP_REACH: u8 = 14;
pub const MP_UNREACH: u8 = 15;
pub const AS4_PATH: u8 = 17;
pub const AS4_AGGREGATOR: u8 = 18;
pub const LARGE_COMMUNITIES: u8 = 32;

/// The well-known GRACEFUL_SHUTDOWN community, 65535:0 (RFC 8326): routes about to go, which
/// the peer should prefer least while they last.
pub const GRACEFUL_SHUTDOWN: u32 = 0xffff_0000;

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const PARTIAL: u8 = 0x20;
const EXTENDED_LENGTH: u8 = 0x10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentType {
    Set,
    Sequence,
    ConfedSequence,
    ConfedSet,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsPathSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// A global address, and a link-local one when the peer shares our link (RFC 2545).
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    pub nlri: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<IpNet>,
}

/// The path attributes of an UPDATE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub origin: Option<Origin>,
    /// As received: with a 2-octet peer, AS_TRANS stands for the 4-octet ASNs (see
    /// `as_path_4`).
    pub as_path: Option<Vec<AsPathSegment>>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<(u32, u32, u32)>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// AS4_PATH, from a 2-octet peer passing on 4-octet ASNs.
    pub as4_path: Option<Vec<AsPathSegment>>,
    /// Attributes FerroLB does not read: (flags, type, value).
    pub other: Vec<(u8, u8, Vec<u8>)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// IPv4 routes withdrawn in the classic field.
    pub withdrawn: Vec<IpNet>,
    pub attributes: Attributes,
    /// IPv4 routes announced in the classic field.
    pub nlri: Vec<IpNet>,
    /// Malformed attributes that did not reset the session.
    pub problems: Vec<AttributeProblem>,
}

/// A well-formed attribute's value, or how to handle a malformed one.
type Checked<T> = Result<T, (Handling, Notify)>;

fn taw<T>(sub: u8, data: &[u8]) -> Checked<T> {
    Err((
        Handling::TreatAsWithdraw,
        Notify::update(sub, data.to_vec()),
    ))
}

fn discard<T>(sub: u8, data: &[u8]) -> Checked<T> {
    Err((
        Handling::AttributeDiscard,
        Notify::update(sub, data.to_vec()),
    ))
}

fn reset<T>(sub: u8, data: &[u8]) -> Checked<T> {
    Err((Handling::SessionReset, Notify::update(sub, data.to_vec())))
}

fn u32_of(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

fn segments(value: &[u8], four_octet: bool) -> Option<Vec<AsPathSegment>> {
    let size = if four_octet { 4 } else { 2 };
    let mut out = Vec::new();
    let mut rest = value;
    while let Some((&kind, tail)) = rest.split_first() {
        let kind = match kind {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        };
        let (&count, tail) = tail.split_first()?;
        // A segment of no ASNs is malformed (RFC 7606 7.2).
        if count == 0 {
            return None;
        }
        let bytes = tail.get(..usize::from(count) * size)?;
        let asns = bytes
            .chunks_exact(size)
            .map(|c| match c {
                [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
                [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                _ => 0,
            })
            .collect();
        out.push(AsPathSegment { kind, asns });
        rest = &tail[bytes.len()..];
    }
    Some(out)
}

fn encode_segments(path: &[AsPathSegment], four_octet: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in path {
        // A segment holds at most 255 ASNs: longer ones are split.
        for chunk in segment.asns.chunks(255) {
            out.push(match segment.kind {
                SegmentType::Set => 1,
                SegmentType::Sequence => 2,
                SegmentType::ConfedSequence => 3,
                SegmentType::ConfedSet => 4,
            });
            out.push(chunk.len() as u8);
            for asn in chunk {
                if four_octet {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    let two = u16::try_from(*asn).unwrap_or(AS_TRANS);
                    out.extend_from_slice(&two.to_be_bytes());
                }
            }
        }
    }
    out
}

fn next_hop_of(afi: u16, bytes: &[u8]) -> Option<NextHop> {
    let v6 = |b: &[u8]| -> Option<Ipv6Addr> { Some(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?)) };
    match (afi, bytes.len()) {
        (AFI_IPV4, 4) => Some(NextHop::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(bytes).ok()?,
        ))),
        // IPv6 next hops for IPv6 routes, and for IPv4 routes with extended next hop.
        (AFI_IPV4 | AFI_IPV6, 16) => Some(NextHop::V6 {
            global: v6(bytes)?,
            link_local: None,
        }),
        (AFI_IPV4 | AFI_IPV6, 32) => Some(NextHop::V6 {
            global: v6(&bytes[..16])?,
            link_local: Some(v6(&bytes[16..])?),
        }),
        _ => None,
    }
}

fn encode_next_hop(next_hop: &NextHop, out: &mut Vec<u8>) {
    match next_hop {
        NextHop::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        NextHop::V6 { global, link_local } => {
            out.push(if link_local.is_some() { 32 } else { 16 });
            out.extend_from_slice(&global.octets());
            if let Some(ll) = link_local {
                out.extend_from_slice(&ll.octets());
            }
        }
    }
}

/// The flags an attribute must carry (optional and transitive bits), for the known types.
fn expected_flags(type_code: u8) -> Option<u8> {
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => TRANSITIVE,
        MED | MP_REACH | MP_UNREACH => OPTIONAL,
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITIES => {
            OPTIONAL | TRANSITIVE
        }
        _ => return None,
    })
}

impl Attributes {
    /// Reads one attribute into `self`.
    fn read(&mut self, flags: u8, type_code: u8, value: &[u8], ctx: &Context) -> Checked<()> {
        // The NOTIFICATION's data: the whole attribute, flags, type, length and value
        // (RFC 4271 6.3).
        let mut data = vec![flags, type_code];
        if flags & EXTENDED_LENGTH != 0 {
            data.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            data.push(value.len() as u8);
        }
        data.extend_from_slice(value);
        if let Some(expected) = expected_flags(type_code)
            && flags & (OPTIONAL | TRANSITIVE) != expected
        {
            return if matches!(type_code, MP_REACH | MP_UNREACH) {
                reset(subcode::ATTRIBUTE_FLAGS, &data)
            } else {
                taw(subcode::ATTRIBUTE_FLAGS, &data)
            };
        }
        match type_code {
            ORIGIN => {
                self.origin = Some(match value {
                    [0] => Origin::Igp,
                    [1] => Origin::Egp,
                    [2] => Origin::Incomplete,
                    [_] => return taw(subcode::INVALID_ORIGIN, &data),
                    _ => return taw(subcode::ATTRIBUTE_LENGTH, &data),
                });
            }
            AS_PATH => match segments(value, ctx.four_octet_as) {
                Some(path) => self.as_path = Some(path),
                None => return taw(subcode::MALFORMED_AS_PATH, &data),
            },
            NEXT_HOP => {
                let Ok(octets) = <[u8; 4]>::try_from(value) else {
                    return taw(subcode::ATTRIBUTE_LENGTH, &data);
                };
                let ip = Ipv4Addr::from(octets);
                if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                    return taw(subcode::INVALID_NEXT_HOP, &data);
                }
                self.next_hop = Some(ip);
            }
            MED => match u32_of(value) {
                Some(med) => self.med = Some(med),
                None => return taw(subcode::ATTRIBUTE_LENGTH, &data),
            },
            LOCAL_PREF => {
                // From an external peer LOCAL_PREF means nothing (RFC 7606 7.5).
                if !ctx.ibgp {
                    return discard(subcode::ATTRIBUTE_FLAGS, &data);
                }
                match u32_of(value) {
                    Some(pref) => self.local_pref = Some(pref),
                    None => return taw(subcode::ATTRIBUTE_LENGTH, &data),
                }
            }
            ATOMIC_AGGREGATE => {
                if !value.is_empty() {
                    return discard(subcode::ATTRIBUTE_LENGTH, &data);
                }
                self.atomic_aggregate = true;
            }
            AGGREGATOR => {
                let aggregator = match (value.len(), ctx.four_octet_as) {
                    (8, true) => u32_of(&value[..4]).zip(u32_of(&value[4..])),
                    (6, false) => u32_of(&value[2..])
                        .map(|ip| (u32::from(u16::from_be_bytes([value[0], value[1]])), ip)),
                    _ => None,
                };
                match aggregator {
                    Some((asn, ip)) => self.aggregator = Some((asn, Ipv4Addr::from(ip))),
                    None => return discard(subcode::ATTRIBUTE_LENGTH, &data),
                }
            }
            COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    return taw(subcode::OPTIONAL_ATTRIBUTE, &data);
                }
                self.communities = value.chunks_exact(4).filter_map(u32_of).collect();
            }
            LARGE_COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(12) {
                    return taw(subcode::OPTIONAL_ATTRIBUTE, &data);
                }
                self.large_communities = value
                    .chunks_exact(12)
                    .filter_map(|c| Some((u32_of(&c[..4])?, u32_of(&c[4..8])?, u32_of(&c[8..])?)))
                    .collect();
            }
            // A 4-octet peer has no reason to send AS4_PATH: discarded (RFC 6793 4.1).
            AS4_PATH if ctx.four_octet_as => {
                return discard(subcode::OPTIONAL_ATTRIBUTE, &data);
            }
            AS4_PATH => match segments(value, true) {
                Some(path) => self.as4_path = Some(path),
                // RFC 6793 6: a malformed AS4_PATH is discarded.
                None => return discard(subcode::OPTIONAL_ATTRIBUTE, &data),
            },
            AS4_AGGREGATOR => {
                if value.len() != 8 {
                    return discard(subcode::ATTRIBUTE_LENGTH, &data);
                }
                self.other.push((flags, type_code, value.to_vec()));
            }
            MP_REACH => {
                let Some(reach) = mp_reach(value) else {
                    return reset(subcode::OPTIONAL_ATTRIBUTE, &data);
                };
                self.mp_reach = reach;
            }
            MP_UNREACH => {
                let Some(unreach) = mp_unreach(value) else {
                    return reset(subcode::OPTIONAL_ATTRIBUTE, &data);
                };
                self.mp_unreach = unreach;
            }
            _ if flags & OPTIONAL == 0 => {
                return reset(subcode::UNRECOGNIZED_WELL_KNOWN, &data);
            }
            _ => self.other.push((flags, type_code, value.to_vec())),
        }
        Ok(())
    }

    /// The AS path with 4-octet ASNs: from a 2-octet peer, AS_PATH's AS_TRANS entries are
    /// replaced from AS4_PATH (RFC 6793 4.2.3).
    pub fn as_path_4(&self) -> Vec<AsPathSegment> {
        let path = self.as_path.clone().unwrap_or_default();
        let Some(as4) = &self.as4_path else {
            return path;
        };
        let count = |p: &[AsPathSegment]| -> usize {
            p.iter()
                .map(|s| match s.kind {
                    SegmentType::Sequence => s.asns.len(),
                    SegmentType::Set => 1,
                    _ => 0,
                })
                .sum()
        };
        let (n, n4) = (count(&path), count(as4));
        if n4 > n {
            // AS4_PATH longer than AS_PATH: ignored, as RFC 6793 says.
            return path;
        }
        // Keep the leading n - n4 ASNs of AS_PATH, then AS4_PATH.
        let mut keep = n - n4;
        let mut merged = Vec::new();
        for segment in path {
            if keep == 0 {
                break;
            }
            match segment.kind {
                SegmentType::Sequence => {
                    let take = segment.asns.len().min(keep);
                    keep -= take;
                    merged.push(AsPathSegment {
                        kind: SegmentType::Sequence,
                        asns: segment.asns[..take].to_vec(),
                    });
                }
                SegmentType::Set => {
                    keep -= 1;
                    merged.push(segment);
                }
                _ => merged.push(segment),
            }
        }
        merged.extend(as4.iter().cloned());
        merged
    }

    /// MP_REACH_NLRI and MP_UNREACH_NLRI first (RFC 7606 5.1), then the others in type
    /// order.
    fn encode(&self, ctx: &Context, out: &mut Vec<u8>) {
        let mut put = |flags: u8, type_code: u8, value: &[u8]| {
            if value.len() > 255 {
                out.extend_from_slice(&[flags | EXTENDED_LENGTH, type_code]);
                out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            } else {
                out.extend_from_slice(&[flags, type_code, value.len() as u8]);
            }
            out.extend_from_slice(value);
        };
        if let Some(reach) = &self.mp_reach {
            let mut value = reach.family.afi.to_be_bytes().to_vec();
            value.push(reach.family.safi);
            encode_next_hop(&reach.next_hop, &mut value);
            value.push(0);
            for net in &reach.nlri {
                encode_prefix(net, &mut value);
            }
            put(OPTIONAL, MP_REACH, &value);
        }
        if let Some(unreach) = &self.mp_unreach {
            let mut value = unreach.family.afi.to_be_bytes().to_vec();
            value.push(unreach.family.safi);
            for net in &unreach.withdrawn {
                encode_prefix(net, &mut value);
            }
            put(OPTIONAL, MP_UNREACH, &value);
        }
        if let Some(origin) = self.origin {
            let code = match origin {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            };
            put(TRANSITIVE, ORIGIN, &[code]);
        }
        if let Some(path) = &self.as_path {
            put(
                TRANSITIVE,
                AS_PATH,
                &encode_segments(path, ctx.four_octet_as),
            );
        }
        if let Some(ip) = self.next_hop {
            put(TRANSITIVE, NEXT_HOP, &ip.octets());
        }
        if let Some(med) = self.med {
            put(OPTIONAL, MED, &med.to_be_bytes());
        }
        if let Some(pref) = self.local_pref.filter(|_| ctx.ibgp) {
            put(TRANSITIVE, LOCAL_PREF, &pref.to_be_bytes());
        }
        if self.atomic_aggregate {
            put(TRANSITIVE, ATOMIC_AGGREGATE, &[]);
        }
        if let Some((asn, ip)) = self.aggregator {
            let mut value = if ctx.four_octet_as {
                asn.to_be_bytes().to_vec()
            } else {
                u16::try_from(asn)
                    .unwrap_or(AS_TRANS)
                    .to_be_bytes()
                    .to_vec()
            };
            value.extend_from_slice(&ip.octets());
            put(OPTIONAL | TRANSITIVE, AGGREGATOR, &value);
        }
        if !self.communities.is_empty() {
            let value: Vec<u8> = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            put(OPTIONAL | TRANSITIVE, COMMUNITIES, &value);
        }
        if let Some(path) = &self.as_path {
            // For a 2-octet peer, the 4-octet ASNs that AS_PATH carried as AS_TRANS.
            let needs_as4 = path.iter().flat_map(|s| &s.asns).any(|a| *a > 0xffff);
            if !ctx.four_octet_as && needs_as4 {
                put(
                    OPTIONAL | TRANSITIVE,
                    AS4_PATH,
                    &encode_segments(path, true),
                );
            }
        }
        if !self.large_communities.is_empty() {
            let value: Vec<u8> = self
                .large_communities
                .iter()
                .flat_map(|(a, b, c)| [a.to_be_bytes(), b.to_be_bytes(), c.to_be_bytes()])
                .flatten()
                .collect();
            put(OPTIONAL | TRANSITIVE, LARGE_COMMUNITIES, &value);
        }
        for (flags, type_code, value) in &self.other {
            // Unread attributes pass on only if optional transitive, marked partial
            // (RFC 4271 5); the non-transitive ones stop here.
            if flags & (OPTIONAL | TRANSITIVE) == OPTIONAL | TRANSITIVE {
                put((flags & !EXTENDED_LENGTH) | PARTIAL, *type_code, value);
            }
        }
    }

    fn encoded_len(&self, ctx: &Context) -> usize {
        let mut out = Vec::new();
        self.encode(ctx, &mut out);
        out.len()
    }
}

/// MP_REACH_NLRI: `Some(None)` for a family FerroLB did not negotiate (ignored).
fn mp_reach(value: &[u8]) -> Option<Option<MpReach>> {
    let afi = u16::from_be_bytes(value.get(..2)?.try_into().ok()?);
    let safi = *value.get(2)?;
    let nh_len = usize::from(*value.get(3)?);
    let next_hop = value.get(4..4 + nh_len)?;
    // One reserved byte, then the NLRI.
    let nlri_bytes = value.get(4 + nh_len + 1..)?;
    if safi != SAFI_UNICAST || !matches!(afi, AFI_IPV4 | AFI_IPV6) {
        return Some(None);
    }
    let next_hop = next_hop_of(afi, next_hop)?;
    let mut nlri = Vec::new();
    decode_prefixes(afi, nlri_bytes, &mut nlri)?;
    Some(Some(MpReach {
        family: Family { afi, safi },
        next_hop,
        nlri,
    }))
}

fn mp_unreach(value: &[u8]) -> Option<Option<MpUnreach>> {
    let afi = u16::from_be_bytes(value.get(..2)?.try_into().ok()?);
    let safi = *value.get(2)?;
    if safi != SAFI_UNICAST || !matches!(afi, AFI_IPV4 | AFI_IPV6) {
        return Some(None);
    }
    let mut withdrawn = Vec::new();
    decode_prefixes(afi, value.get(3..)?, &mut withdrawn)?;
    Some(Some(MpUnreach {
        family: Family { afi, safi },
        withdrawn,
    }))
}

impl Update {
    /// Whether RFC 7606 says every route of this UPDATE is to be treated as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.handling == Handling::TreatAsWithdraw)
    }

    /// The routes announced (classic field and MP_REACH), unless treated as withdrawn.
    pub fn announced(&self) -> impl Iterator<Item = &IpNet> {
        let live = !self.treat_as_withdraw();
        self.nlri
            .iter()
            .chain(self.attributes.mp_reach.iter().flat_map(|r| &r.nlri))
            .filter(move |_| live)
    }

    /// The routes withdrawn (classic field and MP_UNREACH, and those treated as withdrawn).
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = &IpNet> {
        let taw = self.treat_as_withdraw();
        self.withdrawn
            .iter()
            .chain(self.attributes.mp_unreach.iter().flat_map(|u| &u.withdrawn))
            .chain(
                self.nlri
                    .iter()
                    .chain(self.attributes.mp_reach.iter().flat_map(|r| &r.nlri))
                    .filter(move |_| taw),
            )
    }

    /// The End-of-RIB marker of `family` (RFC 4724 2).
    pub fn end_of_rib(family: Family) -> Update {
        let mut update = Update::default();
        if family != Family::IPV4_UNICAST {
            update.attributes.mp_unreach = Some(MpUnreach {
                family,
                withdrawn: Vec::new(),
            });
        }
        update
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.problems.is_empty() {
            return None;
        }
        let a = &self.attributes;
        let only_unreach = Attributes {
            mp_unreach: a.mp_unreach.clone(),
            ..Attributes::default()
        };
        if *a == Attributes::default() {
            return Some(Family::IPV4_UNICAST);
        }
        match &a.mp_unreach {
            Some(u) if u.withdrawn.is_empty() && *a == only_unreach => Some(u.family),
            _ => None,
        }
    }

    pub fn decode(body: &[u8], ctx: &Context) -> Result<Update, Notify> {
        let malformed = || Notify::update(subcode::MALFORMED_ATTRIBUTE_LIST, []);
        let withdrawn_len = usize::from(u16::from_be_bytes(
            body.get(..2)
                .ok_or_else(malformed)?
                .try_into()
                .map_err(|_| malformed())?,
        ));
        let withdrawn_bytes = body.get(2..2 + withdrawn_len).ok_or_else(malformed)?;
        let after = &body[2 + withdrawn_len..];
        let attrs_len = usize::from(u16::from_be_bytes(
            after
                .get(..2)
                .ok_or_else(malformed)?
                .try_into()
                .map_err(|_| malformed())?,
        ));
        let mut attrs = after.get(2..2 + attrs_len).ok_or_else(malformed)?;
        let nlri_bytes = &after[2 + attrs_len..];

        let invalid_network = || Notify::update(subcode::INVALID_NETWORK_FIELD, []);
        let mut update = Update::default();
        decode_prefixes(AFI_IPV4, withdrawn_bytes, &mut update.withdrawn)
            .ok_or_else(invalid_network)?;
        let mut seen = [false; 256];
        while !attrs.is_empty() {
            let (&flags, rest) = attrs.split_first().ok_or_else(malformed)?;
            let (&type_code, rest) = rest.split_first().ok_or_else(malformed)?;
            let (len, rest) = if flags & EXTENDED_LENGTH != 0 {
                let len = rest.get(..2).ok_or_else(malformed)?;
                (
                    usize::from(u16::from_be_bytes([len[0], len[1]])),
                    &rest[2..],
                )
            } else {
                let (&len, rest) = rest.split_first().ok_or_else(malformed)?;
                (usize::from(len), rest)
            };
            // An attribute running past the list (RFC 7606 4): the NLRI are still where the
            // lengths say, so the routes are treated as withdrawn, unless it is an MP one.
            let Some(value) = rest.get(..len) else {
                if matches!(type_code, MP_REACH | MP_UNREACH) {
                    return Err(malformed());
                }
                update.problems.push(AttributeProblem {
                    type_code,
                    handling: Handling::TreatAsWithdraw,
                    notify: malformed(),
                });
                break;
            };
            attrs = &rest[len..];
            let outcome = if seen[usize::from(type_code)] {
                // A repeated attribute (RFC 7606 3.g): fatal for the MP ones, the later
                // copies of any other dropped.
                if matches!(type_code, MP_REACH | MP_UNREACH) {
                    reset(subcode::MALFORMED_ATTRIBUTE_LIST, &[])
                } else {
                    discard(subcode::MALFORMED_ATTRIBUTE_LIST, &[])
                }
            } else {
                seen[usize::from(type_code)] = true;
                update.attributes.read(flags, type_code, value, ctx)
            };
            match outcome {
                Ok(()) => {}
                Err((Handling::SessionReset, notify)) => return Err(notify),
                Err((handling, notify)) => update.problems.push(AttributeProblem {
                    type_code,
                    handling,
                    notify,
                }),
            }
        }
        decode_prefixes(AFI_IPV4, nlri_bytes, &mut update.nlri).ok_or_else(invalid_network)?;

        // Routes need ORIGIN and AS_PATH, and IPv4 routes in the classic field NEXT_HOP:
        // a missing one is treated as withdraw (RFC 7606 3.d).
        let reaches = !update.nlri.is_empty()
            || update
                .attributes
                .mp_reach
                .as_ref()
                .is_some_and(|r| !r.nlri.is_empty());
        if reaches {
            let a = &update.attributes;
            let missing = [
                (ORIGIN, a.origin.is_none() && !seen[usize::from(ORIGIN)]),
                (AS_PATH, a.as_path.is_none() && !seen[usize::from(AS_PATH)]),
                (
                    NEXT_HOP,
                    !update.nlri.is_empty() && a.next_hop.is_none() && !seen[usize::from(NEXT_HOP)],
                ),
            ];
            for (type_code, absent) in missing {
                if absent {
                    update.problems.push(AttributeProblem {
                        type_code,
                        handling: Handling::TreatAsWithdraw,
                        notify: Notify::update(subcode::MISSING_WELL_KNOWN, [type_code]),
                    });
                }
            }
        }
        Ok(update)
    }

    /// The UPDATE's body (without the header).
    pub fn encode(&self, ctx: &Context) -> Vec<u8> {
        let mut withdrawn = Vec::new();
        for net in &self.withdrawn {
            encode_prefix(net, &mut withdrawn);
        }
        let mut attrs = Vec::new();
        self.attributes.encode(ctx, &mut attrs);
        let mut body = Vec::with_capacity(4 + withdrawn.len() + attrs.len() + self.nlri.len() * 5);
        body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
        body.extend_from_slice(&withdrawn);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        for net in &self.nlri {
            encode_prefix(net, &mut body);
        }
        body
    }
}

/// The UPDATEs (whole messages) announcing `prefixes` with `attributes` and `next_hop`, as
/// few as the 4096-byte limit allows: IPv4 routes with an IPv4 next hop in the classic
/// fields, everything else in MP_REACH_NLRI.
pub fn pack_announcements(
    attributes: &Attributes,
    next_hop: NextHop,
    prefixes: &[IpNet],
    ctx: &Context,
) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let (classic, mp): (Vec<&IpNet>, Vec<&IpNet>) = prefixes
        .iter()
        .partition(|p| afi_of(p) == AFI_IPV4 && matches!(next_hop, NextHop::V4(_)));
    if !classic.is_empty() {
        let NextHop::V4(ip) = next_hop else {
            unreachable!("partitioned on an IPv4 next hop")
        };
        let attrs = Attributes {
            next_hop: Some(ip),
            mp_reach: None,
            mp_unreach: None,
            ..attributes.clone()
        };
        // Attributes too large to leave room for any route (thousands of communities)
        // leave room 0: nothing is sent rather than an oversized message.
        let room = MAX_MESSAGE_LEN.saturating_sub(HEADER_LEN + 4 + attrs.encoded_len(ctx));
        for chunk in chunks(&classic, room) {
            let update = Update {
                attributes: attrs.clone(),
                nlri: chunk.into_iter().copied().collect(),
                ..Update::default()
            };
            messages.push(frame(TYPE_UPDATE, &update.encode(ctx)));
        }
    }
    for afi in [AFI_IPV4, AFI_IPV6] {
        let of_family: Vec<&IpNet> = mp.iter().copied().filter(|p| afi_of(p) == afi).collect();
        if of_family.is_empty() {
            continue;
        }
        let family = Family {
            afi,
            safi: SAFI_UNICAST,
        };
        // IPv6 routes over an IPv4 session: the IPv4-mapped address is the next hop.
        let next_hop = match next_hop {
            NextHop::V4(ip) if afi == AFI_IPV6 => NextHop::V6 {
                global: ip.to_ipv6_mapped(),
                link_local: None,
            },
            other => other,
        };
        let empty_reach = Attributes {
            next_hop: None,
            mp_unreach: None,
            mp_reach: Some(MpReach {
                family,
                next_hop,
                nlri: Vec::new(),
            }),
            ..attributes.clone()
        };
        // Two more bytes for the extended length the MP attribute will need once full.
        let room =
            MAX_MESSAGE_LEN.saturating_sub(HEADER_LEN + 4 + empty_reach.encoded_len(ctx) + 1);
        for chunk in chunks(&of_family, room) {
            let mut attrs = empty_reach.clone();
            if let Some(reach) = attrs.mp_reach.as_mut() {
                reach.nlri = chunk.into_iter().copied().collect();
            }
            let update = Update {
                attributes: attrs,
                ..Update::default()
            };
            messages.push(frame(TYPE_UPDATE, &update.encode(ctx)));
        }
    }
    messages
}

/// The UPDATEs (whole messages) withdrawing `prefixes`, as few as the size limit allows:
/// IPv4 in the classic field unless `ipv4_over_mp` (routes announced with an IPv6 next hop
/// are withdrawn the way they came).
pub fn pack_withdrawals(prefixes: &[IpNet], ipv4_over_mp: bool, ctx: &Context) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let (classic, mp): (Vec<&IpNet>, Vec<&IpNet>) = prefixes
        .iter()
        .partition(|p| afi_of(p) == AFI_IPV4 && !ipv4_over_mp);
    for chunk in chunks(&classic, MAX_MESSAGE_LEN - HEADER_LEN - 4) {
        let update = Update {
            withdrawn: chunk.into_iter().copied().collect(),
            ..Update::default()
        };
        messages.push(frame(TYPE_UPDATE, &update.encode(ctx)));
    }
    for afi in [AFI_IPV4, AFI_IPV6] {
        let of_family: Vec<&IpNet> = mp.iter().copied().filter(|p| afi_of(p) == afi).collect();
        // Header, the two length fields, the attribute's flags, type, extended length, AFI
        // and SAFI.
        let room = MAX_MESSAGE_LEN - HEADER_LEN - 4 - 4 - 3;
        for chunk in chunks(&of_family, room) {
            let mut update = Update::default();
            update.attributes.mp_unreach = Some(MpUnreach {
                family: Family {
                    afi,
                    safi: SAFI_UNICAST,
                },
                withdrawn: chunk.into_iter().copied().collect(),
            });
            messages.push(frame(TYPE_UPDATE, &update.encode(ctx)));
        }
    }
    messages
}

/// Splits `prefixes` into runs whose NLRI encoding fits in `room` bytes.
fn chunks<'a>(prefixes: &[&'a IpNet], room: usize) -> Vec<Vec<&'a IpNet>> {
    let mut out: Vec<Vec<&IpNet>> = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for net in prefixes {
        let size = encoded_len(net);
        if size > room {
            // No room for even one: see the callers.
            continue;
        }
        if used + size > room && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(*net);
        used += size;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
