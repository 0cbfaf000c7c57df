//! BGPPeer: sessions, timers, passwords and the peers that would conflict.
use super::*;

impl Builder<'_> {
    pub(super) fn peers(
        &mut self,
        bfd_profiles: &BTreeMap<String, BfdProfile>,
    ) -> BTreeMap<String, Peer> {
        let mut seen = BTreeSet::new();
        let mut peers: BTreeMap<String, Peer> = BTreeMap::new();
        for object in by_name(&self.objects.bgp_peers) {
            let name = object.name_any();
            if !self.claim_name(PEER, &name, &mut seen) {
                continue;
            }
            let before = self.errors.len();
            let peer = self.peer(&name, &object.spec, bfd_profiles);
            let Some(peer) = peer.filter(|_| self.errors.len() == before) else {
                continue;
            };
            // With no Node objects to tell them apart, two peers of one router are refused
            // whatever their node selectors, as MetalLB refuses them.
            let nodes = self.objects.nodes.as_deref();
            if let Some(twin) = peers.values().find(|other| {
                other.endpoint == peer.endpoint
                    && other.vrf == peer.vrf
                    && nodes.is_none_or(|nodes| {
                        nodes_overlap(&other.node_selectors, &peer.node_selectors, Some(nodes))
                    })
            }) {
                self.error(PEER, &name, "spec.peerAddress", format!(
                    "duplicate peer: BGPPeer {:?} already peers with the same router from the same nodes",
                    twin.name
                ));
                continue;
            }
            peers.insert(name, peer);
        }
        peers
    }

    pub(super) fn peer(
        &mut self,
        name: &str,
        spec: &v1beta2::BGPPeerSpec,
        bfd_profiles: &BTreeMap<String, BfdProfile>,
    ) -> Option<Peer> {
        if spec.my_asn == 0 {
            self.error(PEER, name, "spec.myASN", "missing local ASN");
        }
        let peer_asn = match (spec.peer_asn, spec.dynamic_asn) {
            (0, None) => {
                self.error(
                    PEER,
                    name,
                    "spec.peerASN",
                    "missing peer ASN: set peerASN or dynamicASN",
                );
                None
            }
            (asn, Some(_)) if asn != 0 => {
                self.error(
                    PEER,
                    name,
                    "spec.dynamicASN",
                    "both peerASN and dynamicASN specified",
                );
                None
            }
            (0, Some(mode)) => Some(PeerAsn::Dynamic(mode)),
            (asn, _) => Some(PeerAsn::Fixed(asn)),
        };
        // The AS the session speaks as: localASN when set (as the speaker decides it too).
        let local = spec.local_asn.unwrap_or(spec.my_asn);
        let internal = match peer_asn {
            Some(PeerAsn::Fixed(asn)) => asn == local,
            Some(PeerAsn::Dynamic(mode)) => mode == v1beta2::DynamicAsnMode::Internal,
            None => false,
        };
        if internal && spec.ebgp_multi_hop {
            self.error(
                PEER,
                name,
                "spec.ebgpMultiHop",
                "ebgpMultiHop set for an iBGP peer",
            );
        }
        let endpoint = match (spec.peer_address.as_str(), spec.interface.as_str()) {
            ("", "") => {
                self.error(
                    PEER,
                    name,
                    "spec.peerAddress",
                    "peer has no peerAddress or interface specified",
                );
                None
            }
            (address, interface) if !address.is_empty() && !interface.is_empty() => {
                self.error(
                    PEER,
                    name,
                    "spec.interface",
                    "peer has both peerAddress and interface specified",
                );
                None
            }
            ("", interface) => Some(PeerEndpoint::Interface(interface.to_string())),
            (address, _) => match address.parse::<IpAddr>() {
                Ok(ip) => Some(PeerEndpoint::Address(ip)),
                Err(_) => {
                    self.error(
                        PEER,
                        name,
                        "spec.peerAddress",
                        format!("invalid peer address {address:?}"),
                    );
                    None
                }
            },
        };
        let (hold_time, keepalive_time) = self.timers(name, spec)?;
        let connect_time =
            spec.connect_time
                .as_deref()
                .and_then(|text| match parse_go_duration(text) {
                    Ok(d) if d.subsec_nanos() != 0 => {
                        self.error(
                            PEER,
                            name,
                            "spec.connectTime",
                            "connect time should contain a whole number of seconds",
                        );
                        None
                    }
                    Ok(d) if !(1..=65535).contains(&d.as_secs()) => {
                        self.error(
                            PEER,
                            name,
                            "spec.connectTime",
                            "connect time should be between 1 and 65535 seconds",
                        );
                        None
                    }
                    Ok(d) => Some(d),
                    Err(reason) => {
                        self.error(PEER, name, "spec.connectTime", reason);
                        None
                    }
                });
        let port = match spec.peer_port {
            Some(0) => {
                self.error(
                    PEER,
                    name,
                    "spec.peerPort",
                    "invalid port 0, must be in 1-16384 range",
                );
                179
            }
            Some(port) if port > 16384 => {
                self.error(
                    PEER,
                    name,
                    "spec.peerPort",
                    format!("invalid port {port}, must be in 1-16384 range"),
                );
                179
            }
            Some(port) => port,
            None => 179,
        };
        let router_id = (!spec.router_id.is_empty())
            .then(|| spec.router_id.parse::<std::net::Ipv4Addr>())
            .and_then(|r| {
                r.map_err(|_| {
                    self.error(
                        PEER,
                        name,
                        "spec.routerID",
                        format!(
                            "invalid router ID {:?}: must be an IPv4 address",
                            spec.router_id
                        ),
                    )
                })
                .ok()
            });
        let source_address = (!spec.source_address.is_empty())
            .then(|| spec.source_address.parse::<IpAddr>())
            .and_then(|r| {
                r.map_err(|_| {
                    self.error(
                        PEER,
                        name,
                        "spec.sourceAddress",
                        format!("invalid source address {:?}", spec.source_address),
                    )
                })
                .ok()
            });
        if spec.local_asn == Some(0) {
            self.error(PEER, name, "spec.localASN", "invalid localASN 0");
        }
        let node_selectors = self.selectors(PEER, name, "nodeSelectors", &spec.node_selectors);
        let password = self.password(name, spec);
        let bfd_profile = (!spec.bfd_profile.is_empty()).then(|| spec.bfd_profile.clone());
        if let Some(profile) = &bfd_profile
            && !bfd_profiles.contains_key(profile)
        {
            self.error(
                PEER,
                name,
                "spec.bfdProfile",
                format!("references BFDProfile {profile:?}, which does not exist"),
            );
        }
        Some(Peer {
            name: name.to_string(),
            my_asn: spec.my_asn,
            local_asn: spec.local_asn,
            peer_asn: peer_asn?,
            endpoint: endpoint?,
            port,
            source_address,
            router_id,
            hold_time,
            keepalive_time,
            connect_time,
            node_selectors,
            password,
            bfd_profile,
            graceful_restart: spec.enable_graceful_restart,
            ebgp_multi_hop: spec.ebgp_multi_hop,
            vrf: (!spec.vrf.is_empty()).then(|| spec.vrf.clone()),
            dual_stack_address_family: spec.dual_stack_address_family,
        })
    }

    /// Hold and keepalive times with MetalLB's defaults: 90s hold, keepalive a third of it.
    pub(super) fn timers(
        &mut self,
        name: &str,
        spec: &v1beta2::BGPPeerSpec,
    ) -> Option<(Duration, Duration)> {
        let mut parse =
            |field: &str, text: &Option<String>| match text.as_deref().map(parse_go_duration) {
                None => Some(None),
                Some(Ok(d)) => Some(Some(d)),
                Some(Err(reason)) => {
                    self.errors.push(ConfigError::new(
                        PEER,
                        name,
                        format!("spec.{field}"),
                        reason,
                    ));
                    None
                }
            };
        let hold = parse("holdTime", &spec.hold_time);
        let keepalive = parse("keepaliveTime", &spec.keepalive_time);
        let (hold, keepalive) = match (hold?, keepalive?) {
            (None, None) => (Duration::from_secs(90), Duration::from_secs(30)),
            (Some(hold), None) => (hold, hold / 3),
            (None, Some(keepalive)) => (keepalive.saturating_mul(3), keepalive),
            (Some(hold), Some(keepalive)) => (hold, keepalive),
        };
        // BGP carries whole seconds (RFC 4271 4.2).
        let hold = Duration::from_secs(hold.as_secs());
        if hold != Duration::ZERO && hold < Duration::from_secs(3) {
            self.error(
                PEER,
                name,
                "spec.holdTime",
                format!("invalid hold time {hold:?}: must be 0 or >=3s"),
            );
            return None;
        }
        if keepalive > hold {
            self.error(PEER, name, "spec.keepaliveTime", format!("invalid keepalive time {keepalive:?}: must be lower than the hold time {hold:?}"));
            return None;
        }
        Some((hold, keepalive))
    }

    pub(super) fn password(&mut self, name: &str, spec: &v1beta2::BGPPeerSpec) -> Option<String> {
        let secret_name = spec.password_secret.name.as_deref().unwrap_or("");
        match (spec.password.as_str(), secret_name) {
            ("", "") => None,
            (password, "") => Some(password.to_string()),
            (password, _) if !password.is_empty() => {
                self.error(
                    PEER,
                    name,
                    "spec.passwordSecret",
                    "can not have both password and passwordSecret set",
                );
                None
            }
            (_, secret_name) => {
                let namespace = spec.password_secret.namespace.as_deref();
                let secret = self.objects.secrets.iter().find(|s| {
                    s.name_any() == secret_name
                        && namespace.is_none_or(|ns| s.namespace().as_deref() == Some(ns))
                });
                let Some(secret) = secret else {
                    self.error(
                        PEER,
                        name,
                        "spec.passwordSecret",
                        format!("secret {secret_name:?} not found"),
                    );
                    return None;
                };
                if secret.type_.as_deref() != Some("kubernetes.io/basic-auth") {
                    self.error(PEER, name, "spec.passwordSecret", format!("secret {secret_name:?} has type {:?}, expected \"kubernetes.io/basic-auth\"", secret.type_.as_deref().unwrap_or("")));
                    return None;
                }
                let password = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get("password"))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .or_else(|| {
                        secret
                            .string_data
                            .as_ref()
                            .and_then(|d| d.get("password"))
                            .cloned()
                    });
                if password.is_none() {
                    self.error(
                        PEER,
                        name,
                        "spec.passwordSecret",
                        format!("password not specified in secret {secret_name:?}"),
                    );
                }
                password
            }
        }
    }
}
