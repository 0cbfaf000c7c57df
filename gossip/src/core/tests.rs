//! The core driven through the simulation (`crate::sim`): a fake network and clock, every
//! message through the real wire encoding.
use super::*;
use crate::sim::{Sim, addr};
use std::collections::HashSet;
#[test]
fn members_converge_after_joining_through_one() {
    let mut sim = Sim::new(5, 1);
    sim.join_all(0);
    sim.run(Duration::from_secs(10));
    for i in 0..5 {
        assert_eq!(
            sim.live(i),
            5,
            "n{i} sees {:?}",
            sim.nodes[i]
                .live_members()
                .map(|m| &m.name)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_cut_off_member_is_declared_failed_by_everyone() {
    // memberlist's own probing and suspicion (the close watch is tested below).
    let mut sim = Sim::with_config(5, 2, |c| c.close_watch = false);
    sim.join_all(0);
    sim.run(Duration::from_secs(10));
    sim.cut.insert(4);
    let cut_at = sim.now - sim.start;
    sim.run(Duration::from_secs(40));
    for i in 0..4 {
        assert_eq!(sim.live(i), 4, "n{i} still counts n4");
        let failed = sim
            .events
            .iter()
            .find(|(_, who, e)| *who == i && matches!(e, Event::Failed(m) if m.name == "n4"));
        let (at, _, _) = failed.unwrap_or_else(|| panic!("n{i} never declared n4 failed"));
        // LAN defaults: a probe round, then at most the longest suspicion (24 s).
        assert!(
            *at - cut_at < Duration::from_secs(30),
            "n{i} took {:?}",
            *at - cut_at
        );
    }
}

#[test]
fn a_suspected_member_refutes_and_stays() {
    // memberlist's own probing: the close watch would declare the cut member dead at once.
    let mut sim = Sim::with_config(4, 3, |c| c.close_watch = false);
    sim.join_all(0);
    sim.run(Duration::from_secs(8));
    sim.cut.insert(3);
    sim.run(Duration::from_millis(2500));
    sim.cut.clear();
    sim.run(Duration::from_secs(30));
    assert!(sim.failures().is_empty(), "{:?}", sim.failures());
    let incarnation = sim.nodes[0]
        .members()
        .find(|m| m.name == "n3")
        .expect("known")
        .incarnation;
    assert!(incarnation > 1, "n3 never refuted");
    assert!((0..4).all(|i| sim.live(i) == 4));
}

#[test]
fn a_graceful_leave_is_seen_at_once() {
    let mut sim = Sim::new(4, 4);
    sim.join_all(0);
    sim.run(Duration::from_secs(8));
    let out = sim.nodes[2].leave(sim.now);
    sim.send(2, out);
    let left_at = sim.now;
    sim.run(Duration::from_millis(20));
    for i in [0, 1, 3] {
        let seen = sim
            .events
            .iter()
            .find(|(_, who, e)| *who == i && matches!(e, Event::Left(m) if m.name == "n2"));
        let (at, _, _) = seen.unwrap_or_else(|| panic!("n{i} did not see n2 leave"));
        assert!(sim.start + *at - left_at <= Duration::from_millis(5));
    }
}

#[test]
fn a_large_cluster_converges_survives_loss_and_heals_a_partition() {
    let mut sim = Sim::new(128, 5);
    sim.loss_ppm = 50_000; // 5 %
    sim.join_all(0);
    sim.run(Duration::from_secs(60));
    for i in 0..128 {
        assert_eq!(sim.live(i), 128, "n{i} has not converged");
    }
    sim.run(Duration::from_secs(120));
    assert!(
        sim.failures().is_empty(),
        "false failures at 5% loss: {}",
        sim.failures().len()
    );

    // Cut 16 members off from the rest: each side declares the other failed...
    sim.partition = (112..128).collect();
    sim.run(Duration::from_secs(60));
    assert!(
        sim.live(0) <= 112,
        "the majority still counts the minority: {}",
        sim.live(0)
    );
    // ...and after the partition heals, a seed that is a stranger (the driver joins one every
    // 10 s) and anti-entropy (push-pull) bring everyone back.
    sim.partition.clear();
    assert_eq!(
        sim.nodes[0].stranger(&[addr(1)]),
        None,
        "n1 is no stranger to n0"
    );
    let stranger = sim.nodes[127].stranger(&[addr(0), addr(126)]);
    assert_eq!(stranger, Some(addr(0)), "n127 still counts n0");
    let out = sim.nodes[127].join(&[addr(0)]);
    sim.send(127, out);
    sim.run(Duration::from_secs(120));
    for i in [0, 50, 111, 112, 127] {
        assert_eq!(sim.live(i), 128, "n{i} did not heal");
    }
}

/// Three members, joined: on a ring of three, each watches the other two.
fn watching_trio(seed: u64) -> Sim {
    let mut sim = Sim::new(3, seed);
    sim.join_all(0);
    sim.run(Duration::from_secs(6));
    for i in 0..3 {
        assert_eq!(sim.nodes[i].watched().count(), 2, "n{i}");
    }
    sim
}

#[test]
fn watched_members_see_a_cut_member_fail_within_150_ms() {
    for seed in 0..10 {
        let mut sim = watching_trio(100 + seed);
        let cut_at = sim.now - sim.start;
        sim.cut.insert(2);
        sim.run(Duration::from_secs(1));
        for i in 0..2 {
            let (at, _, _) = sim
                .events
                .iter()
                .find(|(_, who, e)| *who == i && matches!(e, Event::Failed(m) if m.name == "n2"))
                .unwrap_or_else(|| panic!("seed {seed}: n{i} never declared n2 failed"));
            assert!(
                *at - cut_at <= Duration::from_millis(150),
                "seed {seed}: n{i} took {:?}",
                *at - cut_at
            );
        }
    }
}

#[test]
fn a_cut_off_watcher_does_not_declare_the_others_dead() {
    let mut sim = watching_trio(7);
    sim.cut.insert(2);
    // Long enough for the usual probing to suspect the others (which then still count as
    // helpers), short of its suspicion timeout (4 s).
    sim.run(Duration::from_millis(3000));
    let blamed_by_n2: Vec<_> = sim
        .failures()
        .into_iter()
        .filter(|(_, who, _)| *who == 2)
        .collect();
    assert!(blamed_by_n2.is_empty(), "{blamed_by_n2:?}");
}

#[test]
fn watching_at_5_percent_loss_declares_nobody_dead_in_ten_minutes() {
    let mut sim = watching_trio(8);
    sim.loss_ppm = 50_000;
    sim.run(Duration::from_secs(600));
    assert!(sim.failures().is_empty(), "{:?}", sim.failures());
    assert!((0..3).all(|i| sim.live(i) == 3));
}

#[test]
fn a_watched_member_that_returns_is_alive_again_and_watched_afresh() {
    let mut sim = watching_trio(9);
    sim.cut.insert(2);
    sim.run(Duration::from_secs(1));
    assert_eq!(sim.live(0), 2);
    sim.cut.clear();
    // Dead members hear they were declared dead through gossip to the dead, refute, and
    // anti-entropy brings them back in any case.
    sim.run(Duration::from_secs(40));
    assert!(
        (0..3).all(|i| sim.live(i) == 3),
        "{:?}",
        (0..3).map(|i| sim.live(i)).collect::<Vec<_>>()
    );
    let before = sim.failures().len();
    sim.run(Duration::from_secs(5));
    assert_eq!(
        sim.failures().len(),
        before,
        "declared dead again after it returned"
    );
}

#[test]
fn meta_updates_reach_every_member() {
    let mut sim = Sim::new(3, 10);
    sim.join_all(0);
    sim.run(Duration::from_secs(5));
    let out = sim.nodes[1].update_meta(b"eth0".to_vec(), sim.now);
    sim.send(1, out);
    sim.run(Duration::from_secs(2));
    for i in [0, 2] {
        let meta = &sim.nodes[i]
            .members()
            .find(|m| m.name == "n1")
            .expect("known")
            .meta;
        assert_eq!(meta, b"eth0", "n{i}");
    }
}

#[test]
fn a_member_declared_dead_hears_it_from_the_first_member_it_probes() {
    let mut sim = watching_trio(11);
    sim.cut.insert(2);
    sim.run(Duration::from_millis(500));
    assert_eq!(sim.live(0), 2, "n2 declared dead by its watchers");
    sim.cut.clear();
    let back_at = sim.now - sim.start;
    // n2 probes someone within a probe interval (1 s), is told it is dead, refutes, and the
    // refutation spreads by gossip (200 ms): well before any push-pull (30 s).
    sim.run(Duration::from_secs(3));
    assert!(
        (0..3).all(|i| sim.live(i) == 3),
        "{:?}",
        (0..3).map(|i| sim.live(i)).collect::<Vec<_>>()
    );
    let refuted = sim.events.iter().any(|(at, who, e)| {
        *who == 2 && *at > back_at && matches!(e, Event::Updated(m) if m.name == "n2")
    });
    assert!(refuted, "n2 never reported its own refutation");
}

#[test]
fn a_meta_update_after_a_cut_brings_a_dead_member_back_at_once() {
    let mut sim = watching_trio(12);
    assert_eq!(sim.live(2), 3, "joined");
    sim.cut.insert(2);
    sim.run(Duration::from_millis(300));
    assert_eq!(sim.live(0), 2);
    let out = sim.nodes[2].update_meta(b"none".to_vec(), sim.now);
    sim.send(2, out);
    sim.run(Duration::from_millis(1700));
    sim.cut.clear();
    let out = sim.nodes[2].update_meta(b"eth0".to_vec(), sim.now);
    sim.send(2, out);
    sim.run(Duration::from_millis(300));
    assert!(
        (0..3).all(|i| sim.live(i) == 3),
        "{:?}",
        (0..3).map(|i| sim.live(i)).collect::<Vec<_>>()
    );
}

/// Issue 9, case 1: a forged suspicion at the top of the incarnation range once overflowed the
/// refutation (a panic in debug builds, a wrap to 0 that could never refute in release ones).
#[test]
fn a_suspicion_at_the_last_incarnation_is_refuted_and_nobody_dies() {
    let mut sim = Sim::new(3, 13);
    sim.join_all(0);
    sim.run(Duration::from_secs(5));
    let forged = Message::Suspect(Suspicion {
        incarnation: u32::MAX,
        node: "n1".to_string(),
        from: "intruder".to_string(),
    });
    for target in [0, 1] {
        let out = sim.nodes[target].handle_packet(
            SocketAddr::from(([198, 18, 9, 9], 7946)),
            vec![forged.clone()],
            sim.now,
        );
        sim.send(target, out);
    }
    sim.run(Duration::from_secs(30));
    assert!(sim.failures().is_empty(), "{:?}", sim.failures());
    for i in 0..3 {
        let n1 = sim.nodes[i]
            .members()
            .find(|m| m.name == "n1")
            .expect("known");
        assert_eq!(n1.state, State::Alive, "n{i} sees n1 {:?}", n1.state);
        assert!(
            incarnation::is_newer(n1.incarnation, u32::MAX),
            "n{i}: {}",
            n1.incarnation
        );
    }
}

/// Issue 9, case 2: a member that died and came back must be probed again, or its second
/// death is never noticed.
#[test]
fn a_member_that_returns_from_the_dead_is_probed_and_its_second_death_noticed() {
    // Probing alone: the close watch would notice the second death whatever the probe order.
    let mut sim = Sim::with_config(3, 14, |c| c.close_watch = false);
    sim.join_all(0);
    sim.run(Duration::from_secs(5));
    sim.cut.insert(2);
    // Back before the dead are forgotten (30 s): beyond that, it joins again through its
    // seeds (the driver's part).
    sim.run(Duration::from_secs(20));
    assert_eq!(sim.live(0), 2, "n2 declared dead");
    sim.cut.clear();
    sim.run(Duration::from_secs(40));
    assert!((0..3).all(|i| sim.live(i) == 3), "n2 is back");
    let failures_before = sim.failures().len();
    let probes_before = sim.nodes[0].stats().probes;
    sim.cut.insert(2);
    sim.run(Duration::from_secs(40));
    assert!(
        sim.nodes[0].stats().probes > probes_before + 20,
        "probing stopped"
    );
    for i in 0..2 {
        assert_eq!(sim.live(i), 2, "n{i} still counts n2 alive");
    }
    assert!(sim.failures().len() >= failures_before + 2);
}

/// Issue 9, case 3: a member that learns of its own death from a push-pull says so (an
/// Updated event about itself, for the speaker to announce again) and tells everyone at once.
#[test]
fn a_death_learnt_by_push_pull_is_refuted_loudly() {
    let mut sim = Sim::new(3, 15);
    sim.join_all(0);
    sim.run(Duration::from_secs(5));
    let mut remote = sim.nodes[0].local_state(false);
    for node in &mut remote.nodes {
        if node.name == "n1" {
            node.state = NodeState::Dead;
            node.incarnation = sim.nodes[1].incarnation;
        }
    }
    let (_, out) = sim.nodes[1].handle_push_pull(remote, sim.now);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::Updated(m)) if m.name == "n1")),
        "{out:?}"
    );
    let told = out
        .iter()
        .filter(|o| {
            matches!(o, Output::Packet { messages, .. }
            if messages.iter().any(|m| matches!(m, Message::Alive(a) if a.node == "n1")))
        })
        .count();
    assert_eq!(told, 2, "both other members told at once: {out:?}");
}

/// A member that refuted its death while cut off (a meta update) is told of the old death
/// again by the reconnect pings: it answers the sender directly, whose view was stale.
#[test]
fn a_stale_death_claim_is_answered_with_our_current_incarnation() {
    let mut sim = watching_trio(16);
    sim.cut.insert(2);
    sim.run(Duration::from_millis(500));
    assert_eq!(sim.live(0), 2, "n2 declared dead");
    // Still cut off, n2 moves on (a meta update): its news is lost.
    let out = sim.nodes[2].update_meta(b"none".to_vec(), sim.now);
    sim.send(2, out);
    sim.run(Duration::from_millis(2000));
    sim.cut.clear();
    // The next reconnect ping (200 ms) carries the old claim; the answer brings n2 back.
    sim.run(Duration::from_millis(300));
    assert!(
        (0..3).all(|i| sim.live(i) == 3),
        "{:?}",
        (0..3).map(|i| sim.live(i)).collect::<Vec<_>>()
    );
}

/// Issue 16: a member still passing on a suspicion that was refuted (it missed the
/// refutation) is told the current incarnation by whoever receives it, so its own suspicion
/// does not expire into a false failure. (The 10-minute run at 1,000 members and 5% loss
/// found one such member.)
#[test]
fn a_stale_suspicion_is_answered_with_the_current_incarnation() {
    let mut sim = Sim::new(3, 24);
    sim.start_converged();
    sim.run(Duration::from_secs(1));
    // n1 refutes a suspicion: everyone but n2 hears it (n2's copy is lost).
    let claim = Suspicion {
        incarnation: 1,
        node: "n1".into(),
        from: "n2".into(),
    };
    let out = sim.nodes[1].handle_packet(addr(0), vec![Message::Suspect(claim.clone())], sim.now);
    let refutation = out
        .iter()
        .find_map(|o| match o {
            Output::Packet { messages, .. } => messages.iter().find_map(|m| match m {
                Message::Alive(a) if a.node == "n1" => Some(m.clone()),
                _ => None,
            }),
            _ => None,
        })
        .or_else(|| {
            let mut broadcast = sim.nodes[1].take_broadcasts(8);
            broadcast.retain(|m| matches!(m, Message::Alive(a) if a.node == "n1"));
            broadcast.pop()
        })
        .expect("n1 refutes");
    let out = sim.nodes[0].handle_packet(addr(1), vec![refutation], sim.now);
    assert!(
        out.iter()
            .all(|o| !matches!(o, Output::Packet { to, .. } if *to == addr(2)))
    );
    // n2 still suspects n1 at incarnation 1 and gossips it to n0, which answers with n1's
    // current state.
    let out = sim.nodes[0].handle_packet(addr(2), vec![Message::Suspect(claim.clone())], sim.now);
    let answer: Vec<&Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Packet { to, messages } if *to == addr(2) => Some(messages),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        matches!(answer[..], [Message::Alive(a)] if a.node == "n1" && a.incarnation > 1),
        "{out:?}"
    );
    // The same stale claim from an address that is no member gets nothing back: the answer
    // must not become a reflector for spoofed sources.
    let outsider = SocketAddr::from(([198, 18, 200, 1], 7946));
    let out = sim.nodes[0].handle_packet(outsider, vec![Message::Suspect(claim)], sim.now);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Packet { .. })),
        "{out:?}"
    );
}

/// Issue 9, case 7: fake members were accepted without bound, with any metadata, and the
/// dead were never forgotten.
#[test]
fn fake_members_are_bounded_and_the_dead_forgotten() {
    let mut config = Config::lan("n0", addr(0));
    config.max_members = 100;
    #[allow(clippy::disallowed_methods)] // any base will do: time is advanced by hand
    let start = Instant::now();
    let mut list = Memberlist::new(config, start, 1);
    let alive = |i: usize, meta: usize| {
        Message::Alive(Alive {
            incarnation: 1,
            node: format!("fake-{i}"),
            addr: vec![198, 18, (i / 250) as u8, (i % 250) as u8],
            port: 7946,
            meta: vec![b'm'; meta],
            vsn: VERSIONS.to_vec(),
        })
    };
    let flood: Vec<Message> = (1..5_000).map(|i| alive(i, 10)).collect();
    list.handle_packet(addr(9), flood, start);
    assert_eq!(list.members().count(), 100);
    let mut small = Memberlist::new(Config::lan("n0", addr(0)), start, 1);
    small.handle_packet(addr(9), vec![alive(1, MAX_META + 1)], start);
    assert_eq!(small.members().count(), 1, "oversized metadata accepted");

    // Every fake member is declared dead, then forgotten after gossip_to_the_dead.
    let dead: Vec<Message> = (1..100)
        .map(|i| {
            Message::Dead(Suspicion {
                incarnation: 1,
                node: format!("fake-{i}"),
                from: "n9".into(),
            })
        })
        .collect();
    list.handle_packet(addr(9), dead, start);
    let later = start + Duration::from_secs(31);
    list.tick(later);
    assert_eq!(list.members().count(), 1, "the dead are never forgotten");
}

/// Issue 9, case 8: pings and indirect pings once made us send datagrams to any address
/// they named.
#[test]
fn requests_cannot_aim_our_datagrams_outside_the_membership() {
    let mut sim = Sim::new(3, 17);
    sim.join_all(0);
    sim.run(Duration::from_secs(5));
    let outsider = SocketAddr::from(([198, 18, 200, 1], 7946));
    let victim = SocketAddr::from(([198, 18, 200, 2], 7946));
    let destinations = |out: &[Output]| -> Vec<SocketAddr> {
        out.iter()
            .filter_map(|o| match o {
                Output::Packet { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    };
    // A ping naming the victim as its source is answered where it came from.
    let ping = Message::Ping(Ping {
        seq_no: 1,
        node: "n0".into(),
        source_addr: ip_bytes(victim.ip()),
        source_port: victim.port(),
        source_node: "x".into(),
    });
    let out = sim.nodes[0].handle_packet(outsider, vec![ping], sim.now);
    assert_eq!(destinations(&out), [outsider]);
    // An indirect ping from an outsider is ignored; a member asking about a non-member gets
    // a nack (we cannot help), and nothing goes to the address it named.
    let indirect = |target: SocketAddr| {
        Message::IndirectPing(IndirectPing {
            seq_no: 2,
            target: ip_bytes(target.ip()),
            port: target.port(),
            node: "x".into(),
            nack: true,
            source_addr: Vec::new(),
            source_port: 0,
            source_node: String::new(),
        })
    };
    let out = sim.nodes[0].handle_packet(outsider, vec![indirect(addr(1))], sim.now);
    assert!(destinations(&out).is_empty(), "{out:?}");
    let out = sim.nodes[0].handle_packet(addr(2), vec![indirect(victim)], sim.now);
    assert_eq!(destinations(&out), [addr(2)]);
    assert!(
        matches!(&out[..], [Output::Packet { messages, .. }] if matches!(messages[..], [Message::Nack(_)])),
        "{out:?}"
    );
    // A member asking about a member is served.
    let out = sim.nodes[0].handle_packet(addr(2), vec![indirect(addr(1))], sim.now);
    assert_eq!(destinations(&out), [addr(1)]);
}

/// Any sequence of messages from the network, with timer runs in between: never a panic,
/// the member count stays bounded, and we always end up alive in our own view with an
/// incarnation newer than any claim about us we accepted to refute (issue 9's fuzzing of
/// the core; `fuzz/fuzz_targets/gossip_core.rs` runs the same through the wire decoder).
mod sequences {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("me".to_string()),
            Just("n1".to_string()),
            Just("n2".to_string()),
            "[a-z]{1,3}",
        ]
    }

    fn incarnation() -> impl Strategy<Value = u32> {
        prop_oneof![
            0u32..5,
            Just(u32::MAX),
            Just(u32::MAX - 1),
            Just(1 << 31),
            any::<u32>()
        ]
    }

    fn address() -> impl Strategy<Value = (Vec<u8>, u16)> {
        (0u8..4, prop_oneof![Just(7946u16), any::<u16>()])
            .prop_map(|(i, port)| (vec![198, 18, 0, i], port))
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                incarnation(),
                name(),
                address(),
                proptest::collection::vec(any::<u8>(), 0..600)
            )
                .prop_map(|(incarnation, node, (addr, port), meta)| Message::Alive(
                    Alive {
                        incarnation,
                        node,
                        addr,
                        port,
                        meta,
                        vsn: VERSIONS.to_vec(),
                    }
                )),
            (incarnation(), name(), name()).prop_map(|(incarnation, node, from)| Message::Suspect(
                Suspicion {
                    incarnation,
                    node,
                    from
                }
            )),
            (incarnation(), name(), name()).prop_map(|(incarnation, node, from)| Message::Dead(
                Suspicion {
                    incarnation,
                    node,
                    from
                }
            )),
            (any::<u32>(), name(), address()).prop_map(|(seq_no, node, (addr, port))| {
                Message::Ping(Ping {
                    seq_no,
                    node,
                    source_addr: addr,
                    source_port: port,
                    source_node: String::new(),
                })
            }),
            (any::<u32>(), name(), address(), any::<bool>()).prop_map(
                |(seq_no, node, (target, port), nack)| {
                    Message::IndirectPing(IndirectPing {
                        seq_no,
                        target,
                        port,
                        node,
                        nack,
                        ..IndirectPing::default()
                    })
                }
            ),
            any::<u32>().prop_map(|seq_no| Message::Ack(Ack {
                seq_no,
                payload: Vec::new()
            })),
            any::<u32>().prop_map(|seq_no| Message::Nack(Nack { seq_no })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn no_sequence_of_messages_breaks_the_core(
            steps in proptest::collection::vec(
                (proptest::collection::vec(message(), 1..6), 0u64..3_000, 0u8..4),
                1..40,
            )
        ) {
            #[allow(clippy::disallowed_methods)] // any base will do: time is advanced by hand
            let mut now = Instant::now();
            let mut config = Config::lan("me", SocketAddr::from(([198, 18, 0, 9], 7946)));
            config.max_members = 8;
            let mut list = Memberlist::new(config, now, 3);
            for (messages, advance_ms, from) in steps {
                let source = SocketAddr::from(([198, 18, 0, from], 7946));
                for message in messages {
                    let claim = match &message {
                        Message::Suspect(s) | Message::Dead(s) if s.node == "me" => Some(s.incarnation),
                        _ => None,
                    };
                    let before = list.incarnation;
                    let _ = list.handle_packet(source, vec![message], now);
                    // A claim about our current incarnation (or a later one) is refuted past
                    // it. (Incarnations are a circle: a run of forged claims can go round it,
                    // so only the latest claim can be beaten.)
                    if let Some(claim) = claim.filter(|c| incarnation::at_least(*c, before)) {
                        prop_assert!(incarnation::is_newer(list.incarnation, claim));
                    }
                }
                now += Duration::from_millis(advance_ms);
                let _ = list.tick(now);
                let _ = list.check_contact(now);
                prop_assert!(list.members().count() <= 8);
                let me = list.members().find(|m| m.name == "me").expect("ourselves");
                prop_assert_eq!(me.state, State::Alive);
            }
        }
    }
}

/// Issue 16: on a settled cluster, each member watches exactly its successor and
/// predecessor on the ring of positions, so everyone is watched by two.
#[test]
fn each_member_watches_its_two_ring_neighbours() {
    let mut sim = Sim::new(12, 20);
    sim.start_converged();
    sim.run(Duration::from_secs(1));
    let mut ring: Vec<(u64, String)> = (0..12)
        .map(|i| format!("n{i}"))
        .map(|n| (ring_position(&n), n))
        .collect();
    ring.sort();
    let mut watchers: HashMap<String, usize> = HashMap::new();
    for (at, (_, name)) in ring.iter().enumerate() {
        let next = &ring[(at + 1) % ring.len()].1;
        let previous = &ring[(at + ring.len() - 1) % ring.len()].1;
        let i: usize = name[1..].parse().expect("n<i>");
        let mut watched: Vec<&str> = sim.nodes[i].watched().collect();
        watched.sort();
        let mut expected = vec![next.as_str(), previous.as_str()];
        expected.sort();
        assert_eq!(watched, expected, "{name}");
        for w in watched {
            *watchers.entry(w.to_string()).or_default() += 1;
        }
    }
    assert!(watchers.values().all(|w| *w == 2), "{watchers:?}");
}

/// Issue 16: what a member sends while nothing happens does not grow with the cluster:
/// a ping to its successor and an ack to its predecessor every 25 ms, plus memberlist's probe.
#[test]
fn idle_datagrams_per_member_do_not_grow_with_the_cluster() {
    let per_member = |n: usize| {
        let mut sim = Sim::new(n, 21);
        sim.start_converged();
        sim.run(Duration::from_secs(3));
        sim.sent.iter_mut().for_each(|s| *s = 0);
        sim.run(Duration::from_secs(10));
        sim.sent.iter().sum::<u64>() as f64 / n as f64 / 10.0
    };
    let (small, large) = (per_member(5), per_member(200));
    assert!(
        (75.0..90.0).contains(&small),
        "{small} datagrams/s at 5 members"
    );
    assert!(large <= small * 1.1, "{large} at 200 members, {small} at 5");
}

/// Issue 16: a member's death is known to everyone within 150 ms, at any size: its ring
/// neighbours detect it and tell every member at once. When both of its neighbours die with
/// it, the next ones on the ring watch it from then on, and it takes one detection more.
#[test]
fn a_death_is_known_everywhere_within_150_ms_and_a_lost_watcher_is_replaced() {
    let mut sim = Sim::new(100, 22);
    sim.start_converged();
    sim.run(Duration::from_secs(3));
    let known_by_all = |sim: &Sim, name: &str, since: Duration| {
        let who: HashSet<usize> = sim
            .events
            .iter()
            .filter(|(at, _, e)| *at >= since && matches!(e, Event::Failed(m) if m.name == name))
            .map(|(_, who, _)| *who)
            .collect();
        let last = sim
            .events
            .iter()
            .filter(|(at, _, e)| *at >= since && matches!(e, Event::Failed(m) if m.name == name))
            .map(|(at, _, _)| *at - since)
            .max();
        (who.len(), last)
    };
    let cut_at = sim.elapsed();
    sim.cut.insert(42);
    sim.run(Duration::from_millis(500));
    let (knowing, last) = known_by_all(&sim, "n42", cut_at);
    assert_eq!(knowing, 99);
    assert!(
        last.is_some_and(|l| l <= Duration::from_millis(150)),
        "{last:?}"
    );

    // A member and both its watchers die at once.
    let victim = 7;
    let neighbours: Vec<usize> = sim.nodes[victim]
        .watched()
        .map(|n| n[1..].parse().expect("n<i>"))
        .collect();
    let cut_at = sim.elapsed();
    sim.cut.insert(victim);
    sim.cut.extend(neighbours.iter().copied());
    sim.run(Duration::from_millis(800));
    let (knowing, last) = known_by_all(&sim, &format!("n{victim}"), cut_at);
    assert_eq!(knowing, 100 - 4, "every live member knows n{victim} died");
    assert!(
        last.is_some_and(|l| l <= Duration::from_millis(400)),
        "{last:?}"
    );
}

/// Issue 16, during a migration: members that do not watch (MetalLB's speakers, here every
/// third member) are watched by the FerroLB member before them on the ring, and the FerroLB
/// members by their neighbours among FerroLB members, so every death is known everywhere at
/// once, whoever dies.
#[test]
fn in_a_mixed_cluster_every_member_is_watched() {
    let mut sim = Sim::with_configs(30, 23, |i, c| c.close_watch = i % 3 != 0);
    sim.start_converged();
    sim.run(Duration::from_secs(2));
    let mut watchers: HashMap<String, usize> = HashMap::new();
    for node in &sim.nodes {
        for w in node.watched() {
            *watchers.entry(w.to_string()).or_default() += 1;
        }
    }
    for i in 0..30 {
        let expected = if i % 3 == 0 { 1 } else { 2 };
        assert_eq!(watchers.get(&format!("n{i}")), Some(&expected), "n{i}");
    }
    for victim in [3, 4, 5] {
        let cut_at = sim.elapsed();
        sim.cut.insert(victim);
        sim.run(Duration::from_millis(500));
        let name = format!("n{victim}");
        let knowing: HashSet<usize> = sim
            .events
            .iter()
            .filter(|(at, _, e)| *at >= cut_at && matches!(e, Event::Failed(m) if m.name == name))
            .map(|(_, who, _)| *who)
            .collect();
        assert_eq!(knowing.len(), 29, "{name} known dead by {knowing:?}");
        sim.cut.clear();
        sim.run(Duration::from_secs(3));
    }
}
