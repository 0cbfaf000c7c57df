//! The admission webhook over HTTPS, as the API server calls it: a TLS client that trusts
//! only the webhook's CA, a real AdmissionReview body, the answer read back.
use ferrolb_api::objects::Object;
use ferrolb_cluster::{ObjectKey, Snapshot};
use ferrolb_controller::webhook::{certs::Bundle, server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const SERVICE: &str = "metallb-webhook-service";
const NOW: i64 = 1_796_000_000;

fn review_of(object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d8b5e1f-1d2c-4f3e-9a7b-2c1d0e9f8a7b",
            "kind": {"group": "metallb.io", "version": "v1beta1", "kind": "IPAddressPool"},
            "resource": {"group": "metallb.io", "version": "v1beta1", "resource": "ipaddresspools"},
            "name": object["metadata"]["name"],
            "namespace": "metallb-system",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": object,
            "dryRun": false,
        }
    }))
    .expect("test setup")
}

async fn start(bundle: &Bundle, snapshot: Snapshot) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("test setup");
    let address = listener.local_addr().expect("test setup");
    let (_keep, acceptor) = watch::channel(server::acceptor(bundle).expect("test setup"));
    let (_keep_snapshots, snapshots) = watch::channel(Arc::new(snapshot));
    tokio::spawn(async move {
        let _held = (_keep, _keep_snapshots);
        server::serve(listener, acceptor, snapshots, "metallb-system".into()).await
    });
    address
}

fn client(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("test setup")).expect("test setup");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("test setup")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// POSTs `body` as the API server does and returns the status line and the JSON answer.
async fn post(
    address: std::net::SocketAddr,
    ca_pem: &str,
    body: &[u8],
) -> std::io::Result<(String, serde_json::Value)> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let name = ServerName::try_from(format!("{SERVICE}.metallb-system.svc")).expect("test setup");
    let mut tls = client(ca_pem).connect(name, tcp).await?;
    let head = format!(
        "POST /validate-metallb-io-v1beta1-ipaddresspool?timeout=10s HTTP/1.1\r\nHost: {SERVICE}.metallb-system.svc:443\r\nContent-Type: application/json\r\nAccept: application/json, */*\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body).await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (headers, json) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers.lines().next().unwrap_or_default().to_string();
    Ok((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

fn pool(name: &str, cidr: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "metallb-system"},
        "spec": {"addresses": [cidr]},
    })
}

#[tokio::test]
async fn the_api_server_gets_its_answers_over_https() {
    let bundle = Bundle::issue(SERVICE, "metallb-system", NOW).unwrap();
    let existing = Object::decode(pool("first", "198.51.100.0/24")).unwrap();
    let mut snapshot = Snapshot {
        synced: true,
        ..Snapshot::default()
    };
    snapshot.objects.insert(ObjectKey::of(&existing), existing);
    let address = start(&bundle, snapshot).await;

    let (status, answer) = post(
        address,
        &bundle.ca_pem,
        &review_of(pool("second", "203.0.113.0/24")),
    )
    .await
    .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(
        answer["response"]["uid"],
        "0d8b5e1f-1d2c-4f3e-9a7b-2c1d0e9f8a7b"
    );

    let (_, answer) = post(
        address,
        &bundle.ca_pem,
        &review_of(pool("second", "198.51.100.0/25")),
    )
    .await
    .unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("overlaps")),
        "{answer}"
    );

    // A client that trusts another CA does not get through, and learns nothing.
    let other = Bundle::issue(SERVICE, "metallb-system", NOW).unwrap();
    assert!(
        post(
            address,
            &other.ca_pem,
            &review_of(pool("x", "203.0.113.0/24"))
        )
        .await
        .is_err()
    );
}

/// A client that opens connections and never speaks TLS holds nobody else up.
#[tokio::test]
async fn stalled_handshakes_hold_nobody_up() {
    let bundle = Bundle::issue(SERVICE, "metallb-system", NOW).unwrap();
    let address = start(
        &bundle,
        Snapshot {
            synced: true,
            ..Snapshot::default()
        },
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(tokio::net::TcpStream::connect(address).await.unwrap());
    }
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        post(
            address,
            &bundle.ca_pem,
            &review_of(pool("second", "203.0.113.0/24")),
        ),
    )
    .await
    .expect("answered while others stall")
    .unwrap();
    assert_eq!(answer.1["response"]["allowed"], true);
    drop(stalled);
}
