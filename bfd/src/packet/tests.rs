use super::*;
use proptest::prelude::*;

/// A Down packet as a peer sends it before it knows us: version 1, no diagnostic, state Down,
/// multiplier 3, My Discriminator 1, Your Discriminator 0, 1 s TX (not Up), 50 ms RX, echo
/// 50 ms.
const DOWN: [u8; 24] = [
    0x20, 0x40, 0x03, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42, 0x40,
    0x00, 0x00, 0xc3, 0x50, 0x00, 0x00, 0xc3, 0x50,
];

/// Up with the Poll bit, after "control detection time expired" once: 50 ms both ways.
const UP_POLL: [u8; 24] = [
    0x21, 0xe0, 0x03, 0x18, 0x00, 0x00, 0x00, 0x2a, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0xc3, 0x50,
    0x00, 0x00, 0xc3, 0x50, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn a_down_packet_decodes_field_by_field_and_encodes_back() {
    let packet = ControlPacket::decode(&DOWN).expect("a valid packet");
    assert_eq!(
        packet,
        ControlPacket {
            diag: Diag::NONE,
            state: State::Down,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discr: 1,
            your_discr: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 50_000,
            required_min_echo_rx_us: 50_000,
        }
    );
    assert_eq!(packet.encode(), DOWN);
    assert_eq!(packet.desired_min_tx(), Duration::from_secs(1));
}

#[test]
fn an_up_packet_with_poll_decodes_and_encodes_back() {
    let packet = ControlPacket::decode(&UP_POLL).expect("a valid packet");
    assert_eq!(packet.state, State::Up);
    assert_eq!(packet.diag, Diag::DETECTION_TIME_EXPIRED);
    assert!(packet.poll && !packet.final_);
    assert_eq!(packet.my_discr, 42);
    assert_eq!(packet.your_discr, 0x1234_5678);
    assert_eq!(packet.required_min_rx(), Duration::from_millis(50));
    assert_eq!(packet.encode(), UP_POLL);
}

#[test]
fn trailing_bytes_past_the_length_field_are_ignored() {
    let mut longer = DOWN.to_vec();
    longer.extend_from_slice(&[0xff; 8]);
    assert_eq!(ControlPacket::decode(&longer), ControlPacket::decode(&DOWN));
}

#[test]
fn each_check_of_section_6_8_6_discards_with_its_reason() {
    let with = |at: usize, value: u8| {
        let mut bytes = DOWN;
        bytes[at] = value;
        ControlPacket::decode(&bytes)
    };
    assert_eq!(ControlPacket::decode(&[]), Err(DecodeError::Short(0)));
    assert_eq!(
        ControlPacket::decode(&DOWN[..23]),
        Err(DecodeError::Short(23))
    );
    assert_eq!(with(0, 0x40), Err(DecodeError::Version(2)));
    assert_eq!(with(0, 0x00), Err(DecodeError::Version(0)));
    assert!(matches!(
        with(3, 23),
        Err(DecodeError::Length { field: 23, .. })
    ));
    assert!(matches!(
        with(3, 25),
        Err(DecodeError::Length { field: 25, .. })
    ));
    assert_eq!(with(2, 0), Err(DecodeError::ZeroMultiplier));
    assert_eq!(with(1, 0x41), Err(DecodeError::Multipoint));
    assert_eq!(with(7, 0), Err(DecodeError::ZeroMyDiscriminator));
    // Your Discriminator 0 is fine in Down and AdminDown, not in Init or Up.
    assert!(with(1, 0x00).is_ok());
    assert_eq!(
        with(1, 0x80),
        Err(DecodeError::ZeroYourDiscriminator(State::Init))
    );
    assert_eq!(
        with(1, 0xc0),
        Err(DecodeError::ZeroYourDiscriminator(State::Up))
    );
    // Authentication FerroLB does not configure: the A bit with a section that fits.
    let mut authenticated = DOWN.to_vec();
    authenticated[1] |= 0x04;
    authenticated[3] = 28;
    authenticated.extend_from_slice(&[1, 4, 0, 0]);
    assert_eq!(
        ControlPacket::decode(&authenticated),
        Err(DecodeError::Authenticated)
    );
    // The A bit with no room for its section is a length error.
    assert!(matches!(with(1, 0x44), Err(DecodeError::Length { .. })));
}

#[test]
fn reserved_diagnostics_are_kept_as_received() {
    let mut bytes = DOWN;
    bytes[0] = 0x20 | 31;
    let packet = ControlPacket::decode(&bytes).expect("a valid packet");
    assert_eq!(packet.diag, Diag(31));
    assert_eq!(packet.diag.name(), "reserved diagnostic");
    assert_eq!(packet.encode(), bytes);
}

fn any_state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::AdminDown),
        Just(State::Down),
        Just(State::Init),
        Just(State::Up)
    ]
}

proptest! {
    #[test]
    fn whatever_decodes_encodes_to_the_same_24_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(packet) = ControlPacket::decode(&bytes) {
            let encoded = packet.encode();
            prop_assert_eq!(ControlPacket::decode(&encoded), Ok(packet));
            // The C bit and everything defined survive; the length becomes 24.
            prop_assert_eq!(&encoded[..3], &bytes[..3]);
            prop_assert_eq!(&encoded[4..], &bytes[4..24]);
        }
    }

    #[test]
    fn every_valid_packet_survives_a_round_trip(
        diag in 0u8..32,
        state in any_state(),
        poll: bool,
        final_: bool,
        cpi: bool,
        demand: bool,
        detect_mult in 1u8..,
        my_discr in 1u32..,
        your_discr: u32,
        tx: u32,
        rx: u32,
        echo: u32,
    ) {
        let your_discr = if matches!(state, State::Init | State::Up) { your_discr.max(1) } else { your_discr };
        let packet = ControlPacket {
            diag: Diag(diag),
            state,
            poll,
            final_,
            control_plane_independent: cpi,
            demand,
            detect_mult,
            my_discr,
            your_discr,
            desired_min_tx_us: tx,
            required_min_rx_us: rx,
            required_min_echo_rx_us: echo,
        };
        prop_assert_eq!(ControlPacket::decode(&packet.encode()), Ok(packet));
    }
}
