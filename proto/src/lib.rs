//! FerroLB's admin API (`ferrolb/admin/v1/admin.proto`): the messages, the servers the
//! speaker and the controller implement, and the clients `ferrolbctl` uses.

/// The default address of a speaker's admin API (`--admin-addr`).
pub const SPEAKER_ADMIN_ADDR: &str = "127.0.0.1:7473";

/// The default address of the controller's admin API (`--admin-addr`): the speakers' port
/// plus one, so both run on one host (standalone mode).
pub const CONTROLLER_ADMIN_ADDR: &str = "127.0.0.1:7474";

/// The largest request the admin servers decode: every request is a few bytes (a
/// `ListRequest` is empty), so anything bigger is refused before it is read whole.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;

/// The server both admin APIs run on, with limits for clients that misbehave: a bounded
/// number of streams per connection, and HTTP/2 pings so a watcher that vanished without
/// closing its connection is dropped within a minute instead of held for ever.
pub fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(32)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .tcp_nodelay(true)
}

#[allow(clippy::all, clippy::unwrap_used, missing_docs)] // generated code
pub mod v1 {
    tonic::include_proto!("ferrolb.admin.v1");
}

/// JSON for the enum fields (prost keeps them as `i32`): their names, as protobuf's JSON
/// mapping writes them; a number no name has stays a number.
mod json {
    use super::v1::{BfdState, MemberState, SessionState};
    use serde::Serializer;

    fn by_name<S: Serializer>(name: Option<&str>, value: i32, s: S) -> Result<S::Ok, S::Error> {
        match name {
            Some(name) => s.serialize_str(name),
            None => s.serialize_i32(value),
        }
    }

    pub fn member_state<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
        let name = MemberState::try_from(*value).ok().map(|e| e.as_str_name());
        by_name(name, *value, s)
    }

    pub fn session_state<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
        let name = SessionState::try_from(*value).ok().map(|e| e.as_str_name());
        by_name(name, *value, s)
    }

    pub fn bfd_state<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
        let name = BfdState::try_from(*value).ok().map(|e| e.as_str_name());
        by_name(name, *value, s)
    }
}

#[cfg(test)]
mod tests {
    use super::v1;

    #[test]
    fn enums_are_written_by_name_in_json() {
        let member = v1::Member {
            name: "n1".into(),
            state: v1::MemberState::Suspect.into(),
            ..Default::default()
        };
        let json = serde_json::to_value(&member).expect("serializable");
        assert_eq!(json["state"], "MEMBER_STATE_SUSPECT");
        let unknown = v1::Member {
            state: 42,
            ..Default::default()
        };
        let json = serde_json::to_value(&unknown).expect("serializable");
        assert_eq!(json["state"], 42);
    }
}
