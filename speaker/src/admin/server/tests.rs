//! Hostile clients of the admin API: garbage, HTTP/1, broken HTTP/2, an oversized request,
//! and a crowd of watchers that vanish. After each, the API still answers and still follows
//! changes.
use super::*;
use ferrolb_proto::v1::speaker_client::SpeakerClient;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(5);

fn member(name: &str) -> v1::Member {
    v1::Member {
        name: name.into(),
        ..v1::Member::default()
    }
}

/// A server on a free loopback port with one member published; the sender changes it.
async fn start() -> (SocketAddr, watch::Sender<Vec<v1::Member>>) {
    let members = watch::Sender::new(vec![member("n1")]);
    let snapshots = Snapshots {
        node: "n1".into(),
        members: members.subscribe(),
        announcements: watch::Sender::new(Default::default()).subscribe(),
        sessions: watch::Sender::new(Default::default()).subscribe(),
        bfd: watch::Sender::new(Vec::new()).subscribe(),
    };
    let addr = serve("127.0.0.1:0".parse().expect("an address"), snapshots)
        .await
        .expect("bound");
    (addr, members)
}

async fn client(addr: SocketAddr) -> SpeakerClient<tonic::transport::Channel> {
    tokio::time::timeout(PATIENCE, SpeakerClient::connect(format!("http://{addr}")))
        .await
        .expect("connects in time")
        .expect("connects")
}

/// The API answers a List with what is published.
async fn assert_answers(addr: SocketAddr, expected: &[&str]) {
    let answer = tokio::time::timeout(
        PATIENCE,
        client(addr).await.list_members(v1::ListRequest::default()),
    )
    .await
    .expect("answers in time")
    .expect("answers");
    let names: Vec<String> = answer
        .into_inner()
        .members
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, expected);
}

/// Writes `bytes` on a fresh connection; the server must close it (or answer and close)
/// rather than hold it or crash.
async fn send_and_expect_close(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    // The server may close before all is written: a failed write is fine.
    let _ = stream.write_all(bytes).await;
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "the server held a connection after {} hostile bytes",
        bytes.len()
    );
}

#[tokio::test]
async fn hostile_clients_do_not_stop_the_admin_api() {
    let (addr, members) = start().await;
    assert_answers(addr, &["n1"]).await;

    // Garbage, deterministic (an LCG), as a port scanner or fuzzer would send.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as u8
        })
        .collect();
    send_and_expect_close(addr, &garbage).await;
    // HTTP/1.1 to an HTTP/2-only server.
    send_and_expect_close(
        addr,
        b"GET /ferrolb.admin.v1.Speaker/ListMembers HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    // The HTTP/2 preface, then a frame header announcing 16 MiB and garbage.
    let mut broken = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    broken.extend_from_slice(&[0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    broken.extend_from_slice(&garbage[..1024]);
    send_and_expect_close(addr, &broken).await;
    assert_answers(addr, &["n1"]).await;

    // A request far bigger than any real one is refused, not read whole.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("a URI")
        .connect()
        .await
        .expect("connects");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let oversized = v1::Member {
        name: "x".repeat(1024 * 1024),
        ..v1::Member::default()
    };
    let refused: Result<tonic::Response<v1::Members>, Status> = grpc
        .unary(
            Request::new(oversized),
            "/ferrolb.admin.v1.Speaker/ListMembers"
                .parse()
                .expect("a path"),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    let status = refused.expect_err("an oversized request is refused");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");

    // One connection holds at most 32 streams: the 33rd waits until one ends.
    let mut one = client(addr).await;
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(
            one.watch_members(v1::ListRequest::default())
                .await
                .expect("a watch")
                .into_inner(),
        );
    }
    let mut extra = one.clone();
    let waiting =
        tokio::spawn(async move { extra.watch_members(v1::ListRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a 33rd stream opened on one connection"
    );
    held.pop();
    let opened = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("opens once a stream ends")
        .expect("the task")
        .expect("a watch");
    drop((opened, held, one));

    // A crowd of watchers on many connections, dropped.
    let mut watchers = Vec::new();
    for _ in 0..100 {
        // Each client is a connection of its own.
        let mut watcher = client(addr).await;
        let stream = watcher
            .watch_members(v1::ListRequest::default())
            .await
            .expect("a watch")
            .into_inner();
        watchers.push((watcher, stream));
    }
    drop(watchers);

    // Still answering, and a watch still follows a change.
    let mut follow = client(addr)
        .await
        .watch_members(v1::ListRequest::default())
        .await
        .expect("a watch")
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, follow.message())
        .await
        .expect("in time")
        .expect("a message")
        .expect("not ended");
    assert_eq!(first.members, [member("n1")]);
    members.send_replace(vec![member("n1"), member("n2")]);
    let next = tokio::time::timeout(PATIENCE, follow.message())
        .await
        .expect("in time")
        .expect("a message")
        .expect("not ended");
    assert_eq!(next.members.len(), 2);
    assert_answers(addr, &["n1", "n2"]).await;
}
