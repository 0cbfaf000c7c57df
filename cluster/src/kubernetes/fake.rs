//! A fake Kubernetes API server on kube-rs's tower-test mock, for tests of the backend and of
//! the components above it: it serves lists, holds watches open and reports every write.
use super::KubeCluster;
use ferrolb_api::objects::Detail;
use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A request the fake API server saw, other than list and watch calls.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: serde_json::Value,
}

/// A Kubernetes list response.
pub fn list(api_version: &str, items: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": api_version, "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Serves lists from `lists` (by path; anything else an empty list; `null` a 404, as for a CRD
/// that is not installed), holds watches open,
/// echoes writes back and reports them on `seen`. Returns the list paths asked for on `listed`.
fn fake_api_server(
    mut handle: Handle,
    lists: BTreeMap<&'static str, serde_json::Value>,
) -> (
    mpsc::UnboundedReceiver<Seen>,
    mpsc::UnboundedReceiver<String>,
) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (listed_tx, listed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut open_watches = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or("").to_string();
            if request.method() == Method::GET && query.contains("watch=true") {
                open_watches.push(respond);
                continue;
            }
            if request.method() == Method::GET {
                // Lists with a label selector are reported with it, so tests can check it.
                let reported = if query.contains("labelSelector") {
                    format!("{path}?{query}")
                } else {
                    path.clone()
                };
                listed_tx.send(reported).ok();
                if lists
                    .get(path.as_str())
                    .is_some_and(serde_json::Value::is_null)
                {
                    let status = serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"});
                    let mut response = Response::new(Body::from(
                        serde_json::to_vec(&status).expect("JSON always serialises"),
                    ));
                    *response.status_mut() = http::StatusCode::NOT_FOUND;
                    respond.send_response(response);
                    continue;
                }
                let body = lists
                    .get(path.as_str())
                    .cloned()
                    .unwrap_or_else(|| list("v1", serde_json::json!([])));
                respond.send_response(Response::new(Body::from(
                    serde_json::to_vec(&body).expect("JSON always serialises"),
                )));
                continue;
            }
            let content_type = request
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            let method = request.method().clone();
            let bytes = request
                .into_body()
                .collect_bytes()
                .await
                .expect("a request body");
            let body: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            // Answer with the object as written (without the nulls of a merge patch), as the
            // API server answers a write with the resulting object.
            let mut answer = body.clone();
            strip_nulls(&mut answer);
            // A collection deleted: the API server answers with what it deleted.
            if method == Method::DELETE && query.contains("labelSelector") {
                answer = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []});
            }
            let answer = serde_json::to_vec(&answer).expect("JSON always serialises");
            respond.send_response(Response::new(Body::from(answer)));
            seen_tx
                .send(Seen {
                    method,
                    path,
                    query,
                    content_type,
                    body,
                })
                .ok();
        }
    });
    (seen, listed)
}

/// A [`KubeCluster`] for MetalLB's `namespace`, writing as `component`, on a fake API server
/// that serves `lists` (by path). Returns the writes it sees and the list paths it served.
pub fn mock_cluster(
    lists: BTreeMap<&'static str, serde_json::Value>,
    namespace: &str,
    component: &str,
) -> (
    KubeCluster,
    mpsc::UnboundedReceiver<Seen>,
    mpsc::UnboundedReceiver<String>,
) {
    mock_cluster_keeping(lists, namespace, component, Detail::Full)
}

/// As [`mock_cluster`], keeping objects with `detail` (a speaker's).
pub fn mock_cluster_keeping(
    lists: BTreeMap<&'static str, serde_json::Value>,
    namespace: &str,
    component: &str,
    detail: Detail,
) -> (
    KubeCluster,
    mpsc::UnboundedReceiver<Seen>,
    mpsc::UnboundedReceiver<String>,
) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (seen, listed) = fake_api_server(handle, lists);
    (
        KubeCluster::new(client, namespace, component, detail),
        seen,
        listed,
    )
}

/// The next write the fake server saw (5 s at most).
pub async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("no request within 5 s")
        .expect("server gone")
}

fn strip_nulls(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}
