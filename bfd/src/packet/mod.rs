//! The BFD Control packet (RFC 5880 section 4.1): 24 bytes without authentication.
//!
//! [`ControlPacket::decode`] applies the checks of section 6.8.6 that need no session (the
//! version, the lengths, a zero multiplier, the Multipoint bit, a zero My Discriminator, a zero
//! Your Discriminator outside Down and AdminDown, and authentication, which FerroLB does not
//! configure): a packet that fails one is discarded with the reason.
use std::fmt;
use std::time::Duration;

/// The length of a Control packet without an authentication section.
pub const CONTROL_LEN: usize = 24;
/// The only version RFC 5880 defines.
pub const VERSION: u8 = 1;

/// A session state, as the packet carries it (section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(bits: u8) -> State {
        match bits & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The diagnostic code: why the sender's session last changed state (section 4.1). Values
/// above 8 are reserved; they are kept as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diag(pub u8);

impl Diag {
    pub const NONE: Diag = Diag(0);
    pub const DETECTION_TIME_EXPIRED: Diag = Diag(1);
    pub const ECHO_FAILED: Diag = Diag(2);
    pub const NEIGHBOR_SIGNALED_DOWN: Diag = Diag(3);
    pub const FORWARDING_PLANE_RESET: Diag = Diag(4);
    pub const PATH_DOWN: Diag = Diag(5);
    pub const CONCATENATED_PATH_DOWN: Diag = Diag(6);
    pub const ADMINISTRATIVELY_DOWN: Diag = Diag(7);
    pub const REVERSE_CONCATENATED_PATH_DOWN: Diag = Diag(8);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "no diagnostic",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "reserved diagnostic",
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A BFD Control packet. Intervals are in microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    /// P: the sender asks for a parameter change to be confirmed (Poll Sequence).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wants Demand mode.
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received packet was discarded (section 6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than a Control packet ({0} bytes)")]
    Short(usize),
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("length field {field} does not fit a datagram of {datagram} bytes")]
    Length { field: u8, datagram: usize },
    #[error("detect multiplier 0")]
    ZeroMultiplier,
    #[error("Multipoint bit set")]
    Multipoint,
    #[error("My Discriminator 0")]
    ZeroMyDiscriminator,
    #[error("Your Discriminator 0 in state {0}")]
    ZeroYourDiscriminator(State),
    #[error("authenticated, and this session uses no authentication")]
    Authenticated,
}

impl ControlPacket {
    /// Parses one datagram's payload.
    pub fn decode(bytes: &[u8]) -> Result<ControlPacket, DecodeError> {
        let Some(head) = bytes.get(..CONTROL_LEN) else {
            return Err(DecodeError::Short(bytes.len()));
        };
        let version = head[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = head[1];
        let authenticated = flags & 0x04 != 0;
        let length = head[3];
        let least = if authenticated {
            CONTROL_LEN + 2
        } else {
            CONTROL_LEN
        };
        if usize::from(length) < least || usize::from(length) > bytes.len() {
            return Err(DecodeError::Length {
                field: length,
                datagram: bytes.len(),
            });
        }
        let word =
            |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let packet = ControlPacket {
            diag: Diag(head[0] & 0x1f),
            state: State::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            control_plane_independent: flags & 0x08 != 0,
            demand: flags & 0x02 != 0,
            detect_mult: head[2],
            my_discr: word(4),
            your_discr: word(8),
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        };
        if packet.detect_mult == 0 {
            return Err(DecodeError::ZeroMultiplier);
        }
        if flags & 0x01 != 0 {
            return Err(DecodeError::Multipoint);
        }
        if packet.my_discr == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        if packet.your_discr == 0 && !matches!(packet.state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(packet.state));
        }
        if authenticated {
            return Err(DecodeError::Authenticated);
        }
        Ok(packet)
    }

    /// The packet's 24 bytes (no authentication section).
    pub fn encode(&self) -> [u8; CONTROL_LEN] {
        let mut out = [0u8; CONTROL_LEN];
        out[0] = (VERSION << 5) | (self.diag.0 & 0x1f);
        out[1] = ((self.state as u8) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.demand) << 1);
        out[2] = self.detect_mult;
        out[3] = CONTROL_LEN as u8;
        for (at, value) in [
            (4, self.my_discr),
            (8, self.your_discr),
            (12, self.desired_min_tx_us),
            (16, self.required_min_rx_us),
            (20, self.required_min_echo_rx_us),
        ] {
            out[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        out
    }

    /// The sender's Desired Min TX Interval.
    pub fn desired_min_tx(&self) -> Duration {
        Duration::from_micros(u64::from(self.desired_min_tx_us))
    }

    /// The sender's Required Min RX Interval (0: send it nothing).
    pub fn required_min_rx(&self) -> Duration {
        Duration::from_micros(u64::from(self.required_min_rx_us))
    }
}

#[cfg(test)]
mod tests;
