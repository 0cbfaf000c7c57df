//! NOTIFICATION (RFC 4271 4.5, with RFC 9003's shutdown message) and ROUTE-REFRESH (RFC 2918,
//! RFC 7313's beginning and end of a refresh).
use super::capability::Family;
use super::error::{Notify, code, describe, subcode};
use super::{HEADER_LEN, MAX_MESSAGE_LEN};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn decode(body: &[u8]) -> Notification {
        Notification {
            code: body.first().copied().unwrap_or(0),
            subcode: body.get(1).copied().unwrap_or(0),
            data: body.get(2..).unwrap_or_default().to_vec(),
        }
    }

    /// The body; data that would take the message past 4096 bytes (an error quoting a
    /// whole maximum-size message) is cut to fit.
    pub fn encode(&self) -> Vec<u8> {
        let room = MAX_MESSAGE_LEN - HEADER_LEN - 2;
        let mut body = vec![self.code, self.subcode];
        body.extend_from_slice(&self.data[..self.data.len().min(room)]);
        body
    }

    /// A Cease for administrative shutdown or reset with a message for the peer's operator
    /// (RFC 9003: at most 255 bytes of UTF-8, cut at a character boundary).
    pub fn shutdown(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(255);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = vec![end as u8];
        data.extend_from_slice(&message.as_bytes()[..end]);
        Notification {
            code: code::CEASE,
            subcode,
            data,
        }
    }

    /// The operator's message of a shutdown or reset Cease, when it carries a valid one.
    pub fn shutdown_message(&self) -> Option<&str> {
        let shutdown = [
            subcode::ADMINISTRATIVE_SHUTDOWN,
            subcode::ADMINISTRATIVE_RESET,
        ];
        if self.code != code::CEASE || !shutdown.contains(&self.subcode) {
            return None;
        }
        let (len, text) = self.data.split_first()?;
        std::str::from_utf8(text.get(..usize::from(*len))?).ok()
    }

    /// In words, e.g. "OPEN error, bad peer AS (2/2)", with a shutdown message if any.
    pub fn describe(&self) -> String {
        let words = format!(
            "{} ({}/{})",
            describe(self.code, self.subcode),
            self.code,
            self.subcode
        );
        match self.shutdown_message() {
            Some(message) if !message.is_empty() => format!("{words}: \"{message}\""),
            _ => words,
        }
    }
}

impl From<Notify> for Notification {
    fn from(notify: Notify) -> Notification {
        Notification {
            code: notify.code,
            subcode: notify.subcode,
            data: notify.data,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteRefreshKind {
    /// Send me your routes again.
    Request,
    /// RFC 7313: the routes that follow are a whole refresh...
    Begin,
    /// ...which ends here: routes not sent again since Begin are stale.
    End,
    /// A subtype RFC 7313 reserves: to be ignored.
    Unknown(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub kind: RouteRefreshKind,
}

impl RouteRefresh {
    /// Reads a whole ROUTE-REFRESH message (header included: an error's data is all of it).
    pub fn decode(message: &[u8]) -> Result<RouteRefresh, Notify> {
        let body = message.get(HEADER_LEN..).unwrap_or_default();
        let (Some(&[a, b, kind, safi]), rest) = (body.first_chunk::<4>(), body.get(4..)) else {
            return Err(Notify::new(
                code::ROUTE_REFRESH,
                subcode::INVALID_MESSAGE_LENGTH,
                message.to_vec(),
            ));
        };
        // RFC 7313 5: a BoRR or EoRR is exactly 4 bytes, and the error carries the whole
        // message. A request may carry ORF entries (RFC 5291); we never offer ORF, so they
        // are ignored and the request served.
        if matches!(kind, 1 | 2) && rest.is_some_and(|r| !r.is_empty()) {
            return Err(Notify::new(
                code::ROUTE_REFRESH,
                subcode::INVALID_MESSAGE_LENGTH,
                message.to_vec(),
            ));
        }
        let kind = match kind {
            0 => RouteRefreshKind::Request,
            1 => RouteRefreshKind::Begin,
            2 => RouteRefreshKind::End,
            // RFC 7313 5: other subtypes are ignored.
            other => RouteRefreshKind::Unknown(other),
        };
        Ok(RouteRefresh {
            family: Family {
                afi: u16::from_be_bytes([a, b]),
                safi,
            },
            kind,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = self.family.afi.to_be_bytes().to_vec();
        body.push(match self.kind {
            RouteRefreshKind::Request => 0,
            RouteRefreshKind::Begin => 1,
            RouteRefreshKind::End => 2,
            RouteRefreshKind::Unknown(kind) => kind,
        });
        body.push(self.family.safi);
        body
    }
}
