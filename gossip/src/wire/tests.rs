//! Packets and streams captured from hashicorp/memberlist 0.2.2 (Debian's package) with
//! `tcpdump` while one Go node joined another and left again: every one decodes, and encodes
//! back to the same bytes.
use super::*;

fn fixtures(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures {prefix}*");
    files
}

fn test_keyring() -> Keyring {
    Keyring::new(metallb_key(b"metallb-secret-for-tests"))
}

#[test]
fn go_udp_packets_decode_and_encode_back_to_the_same_bytes() {
    let mut kinds = std::collections::BTreeSet::new();
    for (name, bytes) in fixtures("plain-udp") {
        let messages = decode_packet(&bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        for m in &messages {
            kinds.insert(format!("{:?}", m.message_type()));
        }
        let crc = bytes[0] == MessageType::HasCrc as u8;
        assert_eq!(
            encode_packet(&messages, crc, None, [0; 12]),
            bytes,
            "{name} re-encoded differently: {messages:#?}"
        );
    }
    for expected in ["Ping", "Ack", "Alive", "Dead"] {
        assert!(kinds.contains(expected), "no {expected} among {kinds:?}");
    }
}

#[test]
fn go_push_pull_streams_decode() {
    for (name, bytes) in fixtures("plain-tcp") {
        let message = decode_stream(&bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Message::PushPull(push_pull) = message else {
            panic!("{name}: not a push-pull")
        };
        // The capture is a join: the answer carries the request's join flag back.
        assert!(push_pull.join, "{name}");
        assert!(
            push_pull
                .nodes
                .iter()
                .any(|n| n.name == "a" || n.name == "b"),
            "{name}: {push_pull:?}"
        );
        // Each truncation is a short read, never a panic or a wrong message.
        for cut in 0..bytes.len() {
            assert!(
                decode_stream(&bytes[..cut], None).is_err(),
                "{name} cut at {cut} decoded"
            );
        }
    }
}

#[test]
fn go_encrypted_traffic_decodes_with_metallbs_key_only() {
    for (name, bytes) in fixtures("encrypted-udp") {
        let messages =
            decode_packet(&bytes, Some(&test_keyring())).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!messages.is_empty());
        let wrong = Keyring::new(metallb_key(b"another secret"));
        assert_eq!(
            decode_packet(&bytes, Some(&wrong)),
            Err(WireError::Decrypt),
            "{name}"
        );
    }
    for (name, bytes) in fixtures("encrypted-tcp") {
        let message =
            decode_stream(&bytes, Some(&test_keyring())).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(message, Message::PushPull(_)), "{name}");
        assert_eq!(
            decode_stream(&bytes, None),
            Err(WireError::UnexpectedlyEncrypted)
        );
    }
}

#[test]
fn our_encryption_round_trips_and_rejects_plain_packets() {
    let ping = Message::Ping(Ping {
        seq_no: 7,
        node: "n2".into(),
        ..Ping::default()
    });
    let sealed = encode_packet(
        std::slice::from_ref(&ping),
        true,
        Some(&test_keyring()),
        [3; 12],
    );
    assert_eq!(
        decode_packet(&sealed, Some(&test_keyring())).unwrap(),
        vec![ping.clone()]
    );
    let plain = encode_packet(std::slice::from_ref(&ping), false, None, [0; 12]);
    assert!(decode_packet(&plain, Some(&test_keyring())).is_err());
    let stream = encode_stream(
        &Message::PushPull(PushPull::default()),
        Some(&test_keyring()),
        [9; 12],
    );
    assert_eq!(
        decode_stream(&stream, Some(&test_keyring())).unwrap(),
        Message::PushPull(PushPull::default())
    );
}

#[test]
fn a_bad_checksum_is_rejected() {
    let ping = Message::Ping(Ping {
        seq_no: 1,
        node: "x".into(),
        ..Ping::default()
    });
    let mut packet = encode_packet(&[ping], true, None, [0; 12]);
    let last = packet.len() - 1;
    packet[last] ^= 1;
    assert_eq!(decode_packet(&packet, None), Err(WireError::Checksum));
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = decode_packet(&bytes, None);
        let _ = decode_packet(&bytes, Some(&test_keyring()));
        let _ = decode_stream(&bytes, None);
        let _ = decode_stream(&bytes, Some(&test_keyring()));
    }
}

/// A datagram holding `payload` LZW-compressed, as memberlist frames it.
fn compressed_packet(payload: &[u8]) -> Vec<u8> {
    let lzw = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8)
        .encode(payload)
        .expect("LZW encodes");
    let mut w = msgpack::Writer::default();
    w.map(2);
    w.str("Algo");
    w.uint(0);
    w.str("Buf");
    w.bytes(&lzw);
    let mut packet = vec![MessageType::Compress as u8];
    packet.extend_from_slice(&w.buf);
    packet
}

/// Issue 9, case 7: a small compressed datagram could expand to tens of megabytes.
#[test]
fn a_compressed_datagram_that_expands_past_a_packet_is_refused() {
    let bomb = compressed_packet(&vec![0u8; 4 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    assert_eq!(
        decode_packet(&bomb, None),
        Err(WireError::TooLarge(MAX_PACKET_BYTES))
    );
    // What memberlist really compresses still decodes.
    let ping = Message::Ping(Ping {
        seq_no: 7,
        node: "n1".into(),
        ..Ping::default()
    });
    assert_eq!(
        decode_packet(&compressed_packet(&ping.encode()), None),
        Ok(vec![ping])
    );
}
