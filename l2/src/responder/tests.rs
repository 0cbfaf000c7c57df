//! Recorded input/output fixtures: each file under `fixtures/` feeds the responder inputs at
//! given times and lists exactly what it must put out, the way holo tests its VRRP. Input
//! frames were recorded with tcpdump from the real `arping` and `ndisc6` in network
//! namespaces; expected frames were recorded from the speaker before layer 2 became this
//! crate (the lab tests prove those bytes against the same tools).
//!
//! A fixture is lines of:
//! - `mac M` and `refresh MS` (optional): the interface, before the first step;
//! - `@MS owned gen=G local=M,.. IP ..`, `@MS arp HEX`, `@MS icmp6 from=IP on-link|off-link
//!   HEX`, `@MS tick`: an input at MS milliseconds;
//! - `> OUTPUT`: the next output of the step above, in order, as `format_output` writes it
//!   (frames after a `|`, hex in any grouping);
//!   a step's outputs must all be listed;
//! - `? deadline MS|none`: `next_deadline()` after the step above.
use super::*;
use crate::packet::format_mac;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {text}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_mac(text: &str) -> Mac {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("a MAC byte"))
        .collect();
    bytes.try_into().expect("six bytes")
}

fn purpose(p: Purpose) -> &'static str {
    match p {
        Purpose::Announcement => "announcement",
        Purpose::Reply => "reply",
    }
}

fn format_output(output: &Output) -> String {
    match output {
        Output::Frame {
            frame,
            ip,
            purpose: p,
        } => {
            format!("frame {} {ip} | {}", purpose(*p), to_hex(frame))
        }
        Output::Icmp6 {
            body,
            source,
            destination,
            ip,
            purpose: p,
        } => format!(
            "icmp6 {} {ip} {source} {destination} | {}",
            purpose(*p),
            to_hex(body)
        ),
        Output::Asked(ip) => format!("asked {ip}"),
        Output::Announcing(ip) => format!("announcing {ip}"),
        Output::Claimed(ip) => format!("claimed {ip}"),
        Output::Conflict { ip, mac } => format!("conflict {ip} {}", format_mac(mac)),
    }
}

/// Frames are written after a `|`, hex digits in any grouping.
fn normalise(line: &str) -> String {
    match line.split_once('|') {
        Some((words, hex)) => format!(
            "{} | {}",
            words.split_whitespace().collect::<Vec<_>>().join(" "),
            hex.split_whitespace().collect::<String>().to_lowercase()
        ),
        None => line.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

// The fixture's clock starts anywhere: times are offsets from this one reading.
#[allow(clippy::disallowed_methods)]
fn run(name: &str, text: &str) {
    let start = Instant::now();
    let mut mac = [2, 0, 0, 0, 0, 0x11];
    let mut refresh = None;
    let mut responder: Option<Responder> = None;
    let mut pending: std::collections::VecDeque<String> = Default::default();
    let mut step = String::new();
    let finish = |pending: &mut std::collections::VecDeque<String>, step: &str| {
        assert!(
            pending.is_empty(),
            "{name}: after `{step}`, outputs not produced: {pending:?}"
        );
    };
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = format!("{name}:{}", number + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(expected) = line.strip_prefix('>') {
            let actual = pending.pop_front().unwrap_or_else(|| {
                panic!("{at}: `{step}` put out nothing more, expected {expected}")
            });
            assert_eq!(normalise(expected), actual, "{at}: after `{step}`");
            continue;
        }
        if let Some(deadline) = line.strip_prefix("? deadline ") {
            finish(&mut pending, &step);
            let actual = responder
                .as_ref()
                .expect("a step came first")
                .next_deadline()
                .map(|d| d.duration_since(start).as_millis().to_string());
            let expected = (deadline != "none").then(|| deadline.to_string());
            assert_eq!(actual, expected, "{at}: next deadline");
            continue;
        }
        finish(&mut pending, &step);
        let mut words = line.split_whitespace();
        let first = words.next().expect("a word");
        if first == "mac" {
            mac = parse_mac(words.next().expect("a MAC"));
            continue;
        }
        if first == "refresh" {
            let ms: u64 = words.next().expect("ms").parse().expect("ms");
            refresh = Some(Duration::from_millis(ms));
            continue;
        }
        let ms: u64 = first
            .strip_prefix('@')
            .unwrap_or_else(|| panic!("{at}: a step starts with @MS: {line}"))
            .parse()
            .expect("milliseconds");
        let now = start + Duration::from_millis(ms);
        let responder = responder.get_or_insert_with(|| Responder::new(mac, refresh, start));
        step = line.to_string();
        let kind = words.next().expect("an input");
        let rest: Vec<&str> = words.collect();
        let outputs = match kind {
            "owned" => {
                let mut owned = Owned::default();
                for word in rest {
                    if let Some(g) = word.strip_prefix("gen=") {
                        owned.generation = g.parse().expect("a generation");
                    } else if let Some(macs) = word.strip_prefix("local=") {
                        owned.local_macs = macs.split(',').map(parse_mac).collect();
                    } else {
                        owned.ips.insert(word.parse().expect("an IP"));
                    }
                }
                responder.set_owned(now, owned)
            }
            "arp" => responder.handle(now, Input::Arp(&hex(&rest.join("").replace('|', "")))),
            "icmp6" => {
                let from = rest[0].strip_prefix("from=").expect("from=IP");
                let from = (from != "-").then(|| from.parse().expect("an IPv6 address"));
                let on_link = match rest[1] {
                    "on-link" => true,
                    "off-link" => false,
                    other => panic!("{at}: on-link or off-link, not {other}"),
                };
                let body = hex(&rest[2..].join("").replace('|', ""));
                responder.handle(
                    now,
                    Input::Icmp6 {
                        body: &body,
                        from,
                        on_link,
                    },
                )
            }
            "tick" => responder.handle(now, Input::Tick),
            other => panic!("{at}: unknown input {other}"),
        };
        pending = outputs.iter().map(format_output).collect();
    }
    finish(&mut pending, &step);
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run(
                stringify!($name),
                include_str!(concat!("fixtures/", stringify!($name), ".fixture")),
            );
        }
    )*};
}

fixtures!(
    arp_replies,
    announcements_repeat_for_five_seconds,
    periodic_refresh,
    ndp_replies,
    conflicts,
);
