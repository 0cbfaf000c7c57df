//! Messages waiting to be gossiped: each is sent a limited number of times, the least sent
//! first (the newest first among equals, as memberlist), and a newer message about a member
//! replaces the older one. Kept ordered, as memberlist's TransmitLimitedQueue is, so that both cost a
//! logarithm of the queue's length: a member that learns a thousand others at once queues a
//! thousand messages.
use crate::wire::Message;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

/// Sends left (most first), then the newest first.
type Key = (Reverse<u32>, Reverse<u64>);

#[derive(Default)]
pub(super) struct Broadcasts {
    queue: BTreeMap<Key, (String, Message)>,
    by_member: HashMap<String, Key>,
    next_id: u64,
}

impl Broadcasts {
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues `message` about member `about` to be sent `sends` times.
    pub(super) fn push(&mut self, about: String, message: Message, sends: u32) {
        if let Some(older) = self.by_member.remove(&about) {
            self.queue.remove(&older);
        }
        let key = (Reverse(sends.max(1)), Reverse(self.next_id));
        self.next_id += 1;
        self.by_member.insert(about.clone(), key);
        self.queue.insert(key, (about, message));
    }

    /// Up to `max` messages, each counted as sent once more.
    pub(super) fn take(&mut self, max: usize) -> Vec<Message> {
        let keys: Vec<Key> = self.queue.keys().take(max).copied().collect();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some((about, message)) = self.queue.remove(&key) else {
                continue;
            };
            out.push(message.clone());
            let (Reverse(sends), id) = key;
            if sends > 1 {
                let next = (Reverse(sends - 1), id);
                self.by_member.insert(about.clone(), next);
                self.queue.insert(next, (about, message));
            } else {
                self.by_member.remove(&about);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Suspicion;

    fn about(node: &str, incarnation: u32) -> Message {
        Message::Suspect(Suspicion {
            incarnation,
            node: node.into(),
            from: "me".into(),
        })
    }

    #[test]
    fn least_sent_first_newest_replaces_and_each_sent_its_count() {
        let mut queue = Broadcasts::default();
        queue.push("a".into(), about("a", 1), 2);
        queue.push("b".into(), about("b", 1), 1);
        queue.push("a".into(), about("a", 2), 2);
        // The newer a has more sends left than b.
        assert_eq!(queue.take(1), [about("a", 2)]);
        queue.push("c".into(), about("c", 1), 1);
        // a, b and c have one send left each: the newest first.
        assert_eq!(queue.take(5), [about("c", 1), about("a", 2), about("b", 1)]);
        assert!(queue.is_empty());
        assert!(queue.take(5).is_empty());
    }
}
