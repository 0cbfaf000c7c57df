use super::*;
use ferrolb_api::kind::Kind;
use ferrolb_api::objects::Object;
use std::time::Duration;

const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: first\nspec:\n  addresses: [198.51.100.0/24]\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n";

fn store_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// Waits (bounded) until the snapshot satisfies `check`, returning how long it took.
async fn wait_for(store: &FileStore, check: impl Fn(&Snapshot) -> bool) -> Duration {
    let start = tokio::time::Instant::now();
    let mut snapshots = store.snapshots();
    loop {
        if check(&snapshots.borrow_and_update()) {
            return start.elapsed();
        }
        tokio::time::timeout(Duration::from_secs(5), snapshots.changed())
            .await
            .expect("the store did not change within 5 s")
            .unwrap();
    }
}

fn pool_key(name: &str) -> ObjectKey {
    ObjectKey::new(Kind::IPAddressPool, Some("metallb-system"), name)
}

#[tokio::test]
async fn loads_objects_and_defaults_namespaces() {
    let dir = store_with(&[
        ("pools.yaml", POOL),
        ("svc.yml", SERVICE),
        ("notes.txt", "not yaml: ["),
    ]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    let snapshot = store.snapshots().borrow().clone();
    assert!(
        snapshot.get(&pool_key("first")).is_some(),
        "{:?}",
        snapshot.objects.keys()
    );
    assert!(
        snapshot
            .get(&ObjectKey::new(Kind::Service, Some("demo"), "web"))
            .is_some()
    );
    assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
}

#[tokio::test]
async fn sees_changes_within_a_second() {
    let dir = store_with(&[("pools.yaml", POOL)]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    std::fs::write(
        dir.path().join("more.yaml"),
        POOL.replace("first", "second")
            .replace("198.51.100", "203.0.113"),
    )
    .unwrap();
    let took = wait_for(&store, |s| s.get(&pool_key("second")).is_some()).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    std::fs::remove_file(dir.path().join("pools.yaml")).unwrap();
    let took = wait_for(&store, |s| s.get(&pool_key("first")).is_none()).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn skips_bad_files_and_invalid_objects_and_keeps_the_rest() {
    let bad_object = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: broken}\nspec:\n  addresses: 42\n";
    let unknown = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n";
    let dir = store_with(&[
        ("a-good.yaml", POOL),
        (
            "b-mixed.yaml",
            &format!("{bad_object}---\n{unknown}---\n{SERVICE}"),
        ),
        ("c-syntax.yaml", "kind: [unclosed\n"),
    ]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    let snapshot = store.snapshots().borrow().clone();
    assert!(snapshot.get(&pool_key("first")).is_some());
    assert!(
        snapshot
            .get(&ObjectKey::new(Kind::Service, Some("demo"), "web"))
            .is_some()
    );
    assert!(snapshot.get(&pool_key("broken")).is_none());
    let problems: Vec<String> = snapshot.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains("b-mixed.yaml (document 1): invalid IPAddressPool"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("c-syntax.yaml (document 1)"),
        "{}",
        problems[1]
    );
    // A kind FerroLB does not read is not a problem, only noted.
    let skipped: Vec<String> = snapshot.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(skipped.len(), 1, "{skipped:#?}");
    assert!(
        skipped[0].contains("b-mixed.yaml (document 2): unsupported kind \"Gadget\""),
        "{}",
        skipped[0]
    );
}

#[tokio::test]
async fn reports_duplicates_and_keeps_the_first() {
    let dir = store_with(&[
        ("a.yaml", POOL),
        ("b.yaml", &POOL.replace("198.51.100.0/24", "203.0.113.0/24")),
    ]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    let snapshot = store.snapshots().borrow().clone();
    let Some(Object::IPAddressPool(pool)) = snapshot.get(&pool_key("first")) else {
        panic!("pool missing")
    };
    assert_eq!(pool.spec.addresses, ["198.51.100.0/24"]);
    assert!(
        snapshot.problems[0]
            .to_string()
            .contains("b.yaml (document 1): IPAddressPool metallb-system/first is defined twice")
    );
}

fn service_status(ip: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo", "annotations": {"metallb.io/ip-allocated-from-pool": "first"}},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
    })
}

#[tokio::test]
async fn status_is_written_under_status_only_and_merged_over_the_user_object() {
    let dir = store_with(&[("svc.yaml", SERVICE)]);
    let before = std::fs::read(dir.path().join("svc.yaml")).unwrap();
    let store = FileStore::open(dir.path(), "metallb-system", "ferrolb-controller").unwrap();
    store.apply(service_status("198.51.100.7")).unwrap();
    let key = ObjectKey::new(Kind::Service, Some("demo"), "web");
    wait_for(&store, |s| match s.get(&key) {
        Some(Object::Service(svc)) => {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.clone())
                .unwrap_or_default();
            ingress.first().map(|i| i.ip.as_deref()) == Some(Some("198.51.100.7"))
                && svc
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a["metallb.io/ip-allocated-from-pool"] == "first")
                && svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
        }
        _ => false,
    })
    .await;
    assert_eq!(
        std::fs::read(dir.path().join("svc.yaml")).unwrap(),
        before,
        "the user's file was touched"
    );
    let written = dir
        .path()
        .join("status/ferrolb-controller/service/demo.yaml");
    assert!(written.is_file());
    let mut stray = Vec::new();
    collect_files(dir.path(), &mut stray);
    stray
        .retain(|p| p != &dir.path().join("svc.yaml") && !p.starts_with(dir.path().join("status")));
    assert!(stray.is_empty(), "files written outside status/: {stray:?}");
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out)
        } else {
            out.push(path)
        }
    }
}

#[tokio::test]
async fn status_writes_are_atomic() {
    let dir = store_with(&[("svc.yaml", SERVICE)]);
    let store = FileStore::open(dir.path(), "metallb-system", "ferrolb-controller").unwrap();
    let path = dir
        .path()
        .join("status/ferrolb-controller/service/demo.yaml");
    store.apply(service_status("198.51.100.0")).unwrap();
    store.flush().unwrap();
    // A reader racing 2,000 rewrites (each longer or shorter than the last) must always see a
    // whole file: the old one or the new one.
    let reader_path = path.clone();
    let reader = std::thread::spawn(move || {
        let mut reads = 0;
        for _ in 0..20_000 {
            let text = std::fs::read_to_string(&reader_path).unwrap();
            let value: serde_json::Value = yaml_serde::from_str(&text).unwrap();
            assert_eq!(value["kind"], "Service", "partial read: {text:?}");
            assert!(
                text.ends_with("ip: 198.51.100.0\n") || text.contains("padding"),
                "partial read: {text:?}"
            );
            reads += 1;
        }
        reads
    });
    for i in 0..2_000u32 {
        let ip = format!("198.51.100.{}", i % 256);
        let mut partial = service_status(&ip);
        partial["metadata"]["annotations"]["padding"] =
            serde_json::json!("x".repeat((i % 7) as usize * 100));
        store.apply(partial).unwrap();
        store.flush().unwrap();
    }
    assert_eq!(reader.join().unwrap(), 20_000);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("demo.yaml")]);
}

#[tokio::test]
async fn owned_objects_appear_and_disappear() {
    let dir = store_with(&[]);
    let store = FileStore::open(dir.path(), "metallb-system", "speaker-n1").unwrap();
    store
        .apply(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status",
            "metadata": {"name": "l2-web-n1", "namespace": "metallb-system"},
            "status": {"node": "n1", "serviceName": "web", "serviceNamespace": "demo", "interfaces": [{"name": "eth0"}]}
        }))
        .unwrap();
    let key = ObjectKey::new(Kind::ServiceL2Status, Some("metallb-system"), "l2-web-n1");
    wait_for(&store, |s| s.get(&key).is_some()).await;
    store.delete(&key).unwrap();
    wait_for(&store, |s| s.get(&key).is_none()).await;
    // Status for an object that does not exist is stale, not a new object.
    store.apply(service_status("198.51.100.1")).unwrap();
    tokio::time::sleep(POLL_INTERVAL * 2).await;
    assert!(
        store
            .snapshots()
            .borrow()
            .get(&ObjectKey::new(Kind::Service, Some("demo"), "web"))
            .is_none()
    );
}

#[tokio::test]
async fn rejects_paths_that_leave_the_store() {
    let dir = store_with(&[]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    let mut partial = service_status("198.51.100.1");
    partial["metadata"]["name"] = serde_json::json!("../../escape");
    assert!(store.apply(partial).is_err());
    assert!(FileStore::open(&dir.path().join("missing"), "metallb-system", "test").is_err());
}

#[tokio::test]
async fn events_are_kept_per_component() {
    let dir = store_with(&[]);
    let store = FileStore::open(dir.path(), "metallb-system", "ferrolb-controller").unwrap();
    for i in 0..(EVENTS_KEPT + 3) {
        store
            .publish(crate::Event {
                regarding: crate::EventTarget {
                    api_version: "v1".into(),
                    kind: "Service".into(),
                    namespace: Some("demo".into()),
                    name: "web".into(),
                    uid: None,
                },
                type_: crate::EventType::Normal,
                reason: ferrolb_api::event_reason::EventReason::IpAllocated,
                message: format!("event {i}"),
            })
            .unwrap();
    }
    // Written in the background, in one go.
    tokio::time::sleep(FLUSH_INTERVAL * 3).await;
    let text =
        std::fs::read_to_string(dir.path().join("status/ferrolb-controller/events.log.json"))
            .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), EVENTS_KEPT);
    assert!(
        lines
            .last()
            .unwrap()
            .contains(&format!("event {}", EVENTS_KEPT + 2))
    );
}

#[tokio::test]
async fn a_file_with_a_syntax_error_keeps_its_last_good_objects() {
    let dir = store_with(&[("pools.yaml", POOL)]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    std::fs::write(
        dir.path().join("pools.yaml"),
        format!("{POOL}  broken: [\n"),
    )
    .unwrap();
    wait_for(&store, |s| !s.problems.is_empty()).await;
    let snapshot = store.snapshots().borrow().clone();
    assert!(
        snapshot.get(&pool_key("first")).is_some(),
        "the pool vanished while its file was broken"
    );
    // A file that parses but drops the object really removes it.
    std::fs::write(dir.path().join("pools.yaml"), "# emptied\n").unwrap();
    wait_for(&store, |s| {
        s.get(&pool_key("first")).is_none() && s.problems.is_empty()
    })
    .await;
}

#[tokio::test]
async fn ignored_kinds_stay_out_of_snapshots_and_written_keys_survive_a_restart() {
    let dir = store_with(&[("pools.yaml", POOL)]);
    let status = |name: &str| {
        serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status",
            "metadata": {"name": name, "namespace": "metallb-system"},
            "status": {"node": "n1"},
        })
    };
    let ignored = crate::Reading {
        ignored: &[Kind::ServiceL2Status],
        ..crate::Reading::default()
    };
    {
        let store =
            FileStore::open_reading(dir.path(), "metallb-system", "speaker", ignored).unwrap();
        store.apply(status("l2-a")).unwrap();
        store.apply(status("l2-b")).unwrap();
        store.flush().unwrap();
    }
    // Another component sees them; the one that ignores the kind does not, but still knows
    // what it wrote, also after a restart.
    let reader = FileStore::open(dir.path(), "metallb-system", "reader").unwrap();
    assert_eq!(reader.snapshots().borrow().l2_statuses().count(), 2);
    let store = FileStore::open_reading(dir.path(), "metallb-system", "speaker", ignored).unwrap();
    assert_eq!(store.snapshots().borrow().l2_statuses().count(), 0);
    assert!(store.snapshots().borrow().get(&pool_key("first")).is_some());
    let mut keys: Vec<String> = store
        .written_keys(Kind::ServiceL2Status)
        .into_iter()
        .map(|k| format!("{:?}/{}", k.namespace, k.name))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "Some(\"metallb-system\")/l2-a",
            "Some(\"metallb-system\")/l2-b"
        ]
    );
    // Another speaker's statuses of that kind are not even read (at 10,000 Services each
    // speaker would hold and parse every other's): a damaged one is no problem of ours.
    let other = dir.path().join("status/other/servicel2status");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("metallb-system.yaml"), "{[ not yaml").unwrap();
    let store = FileStore::open_reading(dir.path(), "metallb-system", "speaker", ignored).unwrap();
    assert!(store.snapshots().borrow().problems.is_empty());
    let reader = FileStore::open(dir.path(), "metallb-system", "reader").unwrap();
    assert!(!reader.snapshots().borrow().problems.is_empty());
}

/// Issue 9, case 5: a damaged status file of our own once made the component spin for ever
/// (NUL bytes, an unterminated flow sequence) or exit at start (bytes that are not UTF-8).
#[tokio::test]
async fn a_damaged_status_file_of_ours_is_reported_and_rewritten() {
    let damage: [&[u8]; 3] = [
        &[0u8; 64],
        b"kind: [unterminated",
        &[0xff, 0xfe, b'a', 0x80],
    ];
    for bytes in damage {
        let dir = store_with(&[("svc.yaml", SERVICE)]);
        let file = dir
            .path()
            .join("status/ferrolb-controller/service/demo.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
        let path = dir.path().to_path_buf();
        let opened = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::task::spawn_blocking(move || {
                FileStore::open(&path, "metallb-system", "ferrolb-controller")
            }),
        )
        .await
        .expect("opening the store hung")
        .unwrap();
        let store = opened.expect("a damaged status file does not stop the component");
        let snapshot = store.snapshots().borrow().clone();
        assert!(
            snapshot
                .problems
                .iter()
                .any(|p| p.source.contains("demo.yaml")),
            "not reported: {:?}",
            snapshot.problems
        );
        store.apply(service_status("198.51.100.7")).unwrap();
        store.flush().unwrap();
        let text = std::fs::read_to_string(&file).expect("rewritten as UTF-8");
        assert!(text.contains("198.51.100.7"), "{text}");
    }
}

/// Issue 9, case 10: a name that climbs out of a path passed, then failed every second.
#[tokio::test]
async fn objects_with_names_kubernetes_refuses_are_reported_and_skipped() {
    let bad = POOL.replace("name: first", "name: ../../etc");
    let bad_namespace = SERVICE.replace("namespace: demo", "namespace: Demo_1");
    let dir = store_with(&[("pools.yaml", &bad), ("svc.yaml", &bad_namespace)]);
    let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    let snapshot = store.snapshots().borrow().clone();
    assert!(snapshot.objects.is_empty(), "{:?}", snapshot.objects.keys());
    let reasons: Vec<&str> = snapshot
        .problems
        .iter()
        .map(|p| p.reason.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("\"../../etc\" is not a valid name")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("namespace \"Demo_1\"")),
        "{reasons:?}"
    );
}

/// Issue 9, case 10: a store directory that vanished was read as empty, freeing every IP.
#[tokio::test]
async fn a_vanished_store_directory_keeps_the_last_objects() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("pools.yaml"), POOL).unwrap();
    let store = FileStore::open(&dir, "metallb-system", "test").unwrap();
    let moved = parent.path().join("elsewhere");
    std::fs::rename(&dir, &moved).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.snapshots().borrow().get(&pool_key("first")).is_some(),
        "the pool vanished with the directory"
    );
    // Back, with a change: seen as usual.
    std::fs::rename(&moved, &dir).unwrap();
    std::fs::write(dir.join("pools.yaml"), POOL.replace("first", "second")).unwrap();
    wait_for(&store, |s| s.get(&pool_key("second")).is_some()).await;
}

/// Issue 9, case 10: temporary files left by a run killed mid-write are removed.
#[tokio::test]
async fn leftover_temporary_files_are_removed_at_start() {
    let dir = store_with(&[("svc.yaml", SERVICE)]);
    let folder = dir.path().join("status/ferrolb-controller/service");
    std::fs::create_dir_all(&folder).unwrap();
    let leftover = folder.join(".demo.yaml.4242.7.tmp");
    std::fs::write(&leftover, "half").unwrap();
    let _store = FileStore::open(dir.path(), "metallb-system", "ferrolb-controller").unwrap();
    assert!(!leftover.exists());
}

proptest::proptest! {
    /// Whatever a status file holds, reading it ends with documents or a reason.
    #[test]
    fn any_status_file_is_read_or_refused(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        yaml in "(kind|metadata|name|status|---|\\[|\\{|:|-| |\n|\0|a|1){0,60}",
    ) {
        let _ = each_status_document(&bytes, |_| Ok(()));
        let _ = each_status_document(yaml.as_bytes(), |_| Ok(()));
    }
}

/// At 10,000 Services every reload merged each Service's status again (JSON out, merge,
/// decode back): now an unchanged status merged into the same object is reused, and
/// snapshots share it; a changed status, or a changed object, is merged again.
#[test]
fn an_unchanged_status_is_not_merged_again() {
    let dir = store_with(&[("pools.yaml", POOL), ("svc.yaml", SERVICE)]);
    let status_dir = dir.path().join("status/controller/service");
    std::fs::create_dir_all(&status_dir).unwrap();
    let status = |ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: demo}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n"
        )
    };
    std::fs::write(status_dir.join("demo.yaml"), status("198.51.100.1")).unwrap();
    let key = ObjectKey::new(Kind::Service, Some("demo"), "web");
    let mut loader = load::Loader::new(dir.path(), "metallb-system");
    let first = loader.load();
    let web = first.get(&key).unwrap().clone();
    assert!(web.to_json().unwrap().to_string().contains("198.51.100.1"));
    // Another file changes: the merged Service is the very same object.
    std::fs::write(
        dir.path().join("pools.yaml"),
        POOL.replace("first", "second"),
    )
    .unwrap();
    let second = loader.load();
    assert!(second.get(&key).unwrap().same(&web));
    // The status changes (its length too: a file's time may not have moved): merged again.
    std::fs::write(status_dir.join("demo.yaml"), status("198.51.100.22")).unwrap();
    let third = loader.load();
    let web3 = third.get(&key).unwrap();
    assert!(!web3.same(&web));
    assert!(
        web3.to_json()
            .unwrap()
            .to_string()
            .contains("198.51.100.22")
    );
    // The Service changes: merged again, onto the new object.
    std::fs::write(
        dir.path().join("svc.yaml"),
        SERVICE.replace("port: 80", "port: 8080"),
    )
    .unwrap();
    let fourth = loader.load();
    let web4 = fourth.get(&key).unwrap().to_json().unwrap().to_string();
    assert!(
        web4.contains("8080") && web4.contains("198.51.100.22"),
        "{web4}"
    );
}

/// Status left for an object that is gone goes from the disk by itself, with nothing else
/// written meanwhile: the flusher is woken by the store's own clean-up, not only by writes.
#[tokio::test]
async fn stale_status_leaves_the_disk_without_other_writes() {
    let dir = store_with(&[("web.yaml", SERVICE)]);
    {
        let store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
        store.apply(service_status("198.51.100.1")).unwrap();
        store.flush().unwrap();
    }
    let status = dir.path().join("status/test/service/demo.yaml");
    assert!(
        std::fs::read_to_string(&status)
            .unwrap()
            .contains("198.51.100.1")
    );
    // The Service goes while nothing runs; at the next start, its status is stale.
    std::fs::remove_file(dir.path().join("web.yaml")).unwrap();
    let _store = FileStore::open(dir.path(), "metallb-system", "test").unwrap();
    let gone = async {
        while std::fs::read_to_string(&status).is_ok_and(|t| t.contains("198.51.100.1")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), gone)
        .await
        .expect("the stale status is still on disk");
}

/// Issue 15: a lost speaker cannot withdraw its statuses; a survivor deletes those labelled
/// with its node from every share, leaving everything else as it was.
#[tokio::test]
async fn a_survivor_deletes_a_lost_nodes_labelled_objects() {
    let dir = store_with(&[("pools.yaml", POOL)]);
    let status = |name: &str, kind: &str, node: &str| {
        serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": kind,
            "metadata": {"name": name, "namespace": "metallb-system", "labels": {"metallb.io/node": node}},
            "status": {"node": node},
        })
    };
    {
        let lost = FileStore::open(dir.path(), "metallb-system", "speaker-n3").unwrap();
        for name in ["l2-a", "l2-b"] {
            lost.apply(status(name, "ServiceL2Status", "n3")).unwrap();
        }
        lost.apply(status("bgp-a", "ServiceBGPStatus", "n3"))
            .unwrap();
        // A node named like a prefix of another is not the other.
        lost.apply(status("l2-other", "ServiceL2Status", "n33"))
            .unwrap();
        lost.flush().unwrap();
    }
    let survivor = FileStore::open(dir.path(), "metallb-system", "speaker-n1").unwrap();
    survivor
        .apply(status("l2-own", "ServiceL2Status", "n1"))
        .unwrap();
    let label = ("metallb.io/node", "n3");
    let found = survivor
        .delete_labelled(Kind::ServiceL2Status, "metallb-system", label)
        .unwrap();
    assert_eq!(found, 2);
    let found = survivor
        .delete_labelled(Kind::ServiceBGPStatus, "metallb-system", label)
        .unwrap();
    assert_eq!(found, 1);
    survivor.flush().unwrap();
    let reader = FileStore::open(dir.path(), "metallb-system", "reader").unwrap();
    let snapshot = reader.snapshots().borrow().clone();
    let mut left: Vec<String> = snapshot
        .l2_statuses()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    left.sort();
    assert_eq!(left, ["l2-other", "l2-own"]);
    let bgp = ObjectKey::new(Kind::ServiceBGPStatus, Some("metallb-system"), "bgp-a");
    assert!(snapshot.get(&bgp).is_none());
    assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
    // The emptied bucket is gone, not left as an empty file.
    let emptied = dir
        .path()
        .join("status/speaker-n3/servicebgpstatus/metallb-system.yaml");
    assert!(!emptied.exists());
    // Deleting again finds nothing; our own labelled objects go too.
    assert_eq!(
        survivor
            .delete_labelled(Kind::ServiceL2Status, "metallb-system", label)
            .unwrap(),
        0
    );
    let own = ("metallb.io/node", "n1");
    assert_eq!(
        survivor
            .delete_labelled(Kind::ServiceL2Status, "metallb-system", own)
            .unwrap(),
        1
    );
}

/// A speaker keeps Services and EndpointSlices slim: read without a namespace, merged with
/// the controller's status, and merged again when that status changes.
#[tokio::test]
async fn a_speaker_store_keeps_slim_services_with_the_status_merged() {
    let service = SERVICE.replace("  namespace: demo\n", "");
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: n1}]\n";
    let dir = store_with(&[("svc.yaml", &format!("{service}---\n{slice}"))]);
    let controller = FileStore::open(dir.path(), "metallb-system", "ferrolb-controller").unwrap();
    let status = |ip: &str| {
        let mut status = service_status(ip);
        status["metadata"]["namespace"] = "default".into();
        status
    };
    controller.apply(status("198.51.100.7")).unwrap();
    controller.flush().unwrap();
    let reading = crate::Reading {
        detail: ferrolb_api::objects::Detail::Speaker,
        ..crate::Reading::default()
    };
    let speaker =
        FileStore::open_reading(dir.path(), "metallb-system", "speaker", reading).unwrap();
    let service_key = ObjectKey::new(Kind::Service, Some("default"), "web");
    let ips = |s: &Snapshot| -> Vec<String> {
        match s.get(&service_key) {
            Some(Object::SlimService(svc)) => svc.ips.iter().map(|ip| ip.to_string()).collect(),
            other => panic!("a slim Service: {other:?}"),
        }
    };
    let has = |ip: &'static str| move |s: &Snapshot| ips(s) == [ip];
    wait_for(&speaker, has("198.51.100.7")).await;
    let snapshot = speaker.snapshots().borrow().clone();
    let Some(Object::SlimService(svc)) = snapshot.get(&service_key) else {
        unreachable!()
    };
    assert!(svc.is_ours(None), "{svc:?}");
    let slice_key = ObjectKey::new(Kind::EndpointSlice, Some("default"), "web-1");
    let Some(Object::SlimEndpointSlice(slice)) = snapshot.get(&slice_key) else {
        panic!("a slim EndpointSlice: {:?}", snapshot.objects.keys());
    };
    assert_eq!(slice.service.as_deref(), Some("web"));
    assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
    controller.apply(status("198.51.100.8")).unwrap();
    controller.flush().unwrap();
    wait_for(&speaker, has("198.51.100.8")).await;
}

/// An object written without a namespace is defaulted once, when its file is read: a reload
/// for another file reuses it and its merged status, instead of copying and merging it again.
#[tokio::test]
async fn an_object_without_a_namespace_is_reused_across_reloads() {
    let service = SERVICE.replace("  namespace: demo\n", "");
    let dir = store_with(&[("svc.yaml", &service)]);
    let store = FileStore::open(dir.path(), "metallb-system", "ferrolb-controller").unwrap();
    let mut status = service_status("198.51.100.7");
    status["metadata"]["namespace"] = "default".into();
    store.apply(status).unwrap();
    store.flush().unwrap();
    let key = ObjectKey::new(Kind::Service, Some("default"), "web");
    let has_status =
        |s: &Snapshot| matches!(s.get(&key), Some(Object::Service(svc)) if svc.status.is_some());
    wait_for(&store, has_status).await;
    let before = store.snapshots().borrow().get(&key).cloned().unwrap();
    std::fs::write(dir.path().join("pools.yaml"), POOL).unwrap();
    wait_for(&store, |s| s.get(&pool_key("first")).is_some()).await;
    let after = store.snapshots().borrow().get(&key).cloned().unwrap();
    assert!(
        after.same(&before),
        "the Service was copied or merged again"
    );
}
