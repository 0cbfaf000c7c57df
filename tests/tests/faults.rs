//! The fault harness (issue 9): faults injected into a running controller and three
//! speakers while a client checks, every 10 ms, that at most one MAC answers for the Service
//! IP and that it is answered.
use ferrolb_e2e::faults::{AnswerWatch, MAX_DOUBLE_ANSWER};
use ferrolb_e2e::lab_available;
use ferrolb_e2e::layer2::{L2Cluster, NODES, POOL, election_order, nodes, service};
use std::time::Duration;

const TOOLS: &[&str] = &["ip"];
const SETTLE: Duration = Duration::from_secs(15);

/// The owner's link goes down for `cut`, then comes back: the taker must answer while it is
/// down, and the two must never both answer for longer than a takeover takes.
fn link_flap(ip: &str, cut: Duration) {
    if !lab_available(TOOLS) {
        return;
    }
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", POOL),
        ("nodes.yaml", &nodes(&[])),
        ("web.yaml", &service("web", ip, "Cluster", &NODES)),
    ])
    .expect("the lab starts");
    let order = election_order(ip, &NODES);
    assert!(
        cluster.wait_resolves_to(ip, Some(&order[0]), SETTLE),
        "{ip} is not answered by {}\n{}",
        order[0],
        cluster.logs()
    );
    // Long enough after the link returns for the IP to settle back on its owner.
    let span = Duration::from_secs(4) + cut + Duration::from_secs(5);
    let watch = AnswerWatch::start(&mut cluster, ip, span).expect("watching the answers");
    std::thread::sleep(Duration::from_secs(2));
    cluster
        .lab
        .set_link(&order[0], false)
        .expect("cutting the link");
    std::thread::sleep(cut);
    cluster
        .lab
        .set_link(&order[0], true)
        .expect("restoring the link");
    let answers = watch.finish(&mut cluster).expect("the answers");
    assert!(
        answers.longest_double < MAX_DOUBLE_ANSWER,
        "after a {cut:?} cut, two MACs answered for {ip} for {:?} ({answers:?}, owner {}, MACs {:?})\n{}",
        answers.longest_double,
        order[0],
        NODES.map(|n| (n, cluster.mac(n))),
        cluster.logs()
    );
    // Unanswered only while the owner's loss is detected (about 0.1 s), with room for a
    // loaded machine.
    let silent = answers.rounds - answers.answered;
    assert!(
        silent <= 60,
        "{ip} went unanswered for {silent} rounds of 10 ms ({answers:?})\n{}",
        cluster.logs()
    );
    assert!(
        cluster.wait_resolves_to(ip, Some(&order[0]), SETTLE),
        "{ip} did not return to {}\n{}",
        order[0],
        cluster.logs()
    );
}

#[test]
fn a_200_ms_link_flap_never_has_two_nodes_answering() {
    link_flap("198.51.100.60", Duration::from_millis(200));
}

#[test]
fn a_1500_ms_link_flap_never_has_two_nodes_answering() {
    link_flap("198.51.100.61", Duration::from_millis(1500));
}

#[test]
fn a_6_s_link_flap_never_has_two_nodes_answering() {
    link_flap("198.51.100.62", Duration::from_secs(6));
}
