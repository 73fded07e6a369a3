//! The in-memory event bus, for tests and single-process runs: like Kafka, each topic is a set of
//! ordered, partitioned logs (kept whole, no retention) read by consumer groups that commit offsets.
//!
//! A record's partition is a stable hash (FNV-1a) of its key, so the same key lands in the same
//! partition on every run. A group's members, in the order they joined, share the partitions:
//! partition `p` goes to member `p % members`. Every join or leave starts a new generation, in which
//! each member restarts its partitions from the committed offsets (at-least-once delivery).
//! A follower reads every partition from the ends they had when it began.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::ports::events::{EventBus, EventConsumer, EventFollower, Message, PartitionLag, PartlyPublished, Record};
use crate::ports::{PortError, Probe};

const DEFAULT_PARTITIONS: u32 = 3;

pub struct MemoryEventBus {
    shared: Arc<Shared>,
}

struct Shared {
    partitions: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    next_member: u64,
}

struct Topic {
    /// One log per partition; a record's offset is its index.
    logs: Vec<Vec<Record>>,
    groups: HashMap<String, Group>,
    /// Bumped on every publish and rebalance, so that waiting consumers look again.
    changes: watch::Sender<u64>,
}

struct Group {
    /// Per partition: the offset the group resumes at.
    committed: Vec<u64>,
    /// Member ids; ascending, which is also the order they joined.
    members: BTreeSet<u64>,
    /// Static members: instance name → member id. A new member under a taken name replaces the old one.
    instances: HashMap<String, u64>,
    generation: u64,
}

impl State {
    fn topic(&mut self, name: &str, partitions: u32) -> &mut Topic {
        self.topics.entry(name.to_owned()).or_insert_with(|| Topic {
            logs: (0..partitions).map(|_| Vec::new()).collect(),
            groups: HashMap::new(),
            changes: watch::Sender::new(0),
        })
    }
}

impl Topic {
    fn wake(&self) {
        self.changes.send_modify(|version| *version = version.wrapping_add(1));
    }
}

impl Group {
    /// The partitions `member` owns in the current generation, if it is a member.
    fn assignment(&self, member: u64) -> Vec<u32> {
        let Some(index) = self.members.iter().position(|&m| m == member) else {
            return Vec::new();
        };
        let members = self.members.len();
        (0..self.committed.len()).filter(|p| p % members == index).map(|p| p as u32).collect()
    }
}

/// FNV-1a (64 bit): fixed, unlike std's randomly seeded hasher, so partitions survive restarts.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn partition_for(key: &str, partitions: u32) -> u32 {
    // The remainder is below `partitions`, so it fits in a u32.
    (fnv1a(key.as_bytes()) % u64::from(partitions)) as u32
}

impl MemoryEventBus {
    /// A bus whose topics have `partitions` partitions (at least one).
    pub fn new(partitions: u32) -> Self {
        let shared = Shared { partitions: partitions.max(1), state: Mutex::new(State::default()) };
        MemoryEventBus { shared: Arc::new(shared) }
    }

    pub fn partitions(&self) -> u32 {
        self.shared.partitions
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new(DEFAULT_PARTITIONS)
    }
}

#[async_trait]
impl Probe for MemoryEventBus {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish_batch(&self, topic: &str, messages: &[Message]) -> Result<(), PartlyPublished> {
        let partitions = self.shared.partitions;
        let mut state = self.shared.state.lock();
        let topic_state = state.topic(topic, partitions);
        for message in messages {
            let partition = partition_for(&message.key, partitions);
            let log = &mut topic_state.logs[partition as usize];
            log.push(Record {
                topic: topic.to_owned(),
                partition,
                offset: log.len() as u64,
                key: message.key.clone(),
                payload: message.payload.clone(),
                headers: message.headers.clone(),
            });
        }
        topic_state.wake();
        Ok(())
    }

    async fn subscribe_as(
        &self,
        topic: &str,
        group: &str,
        instance: Option<&str>,
    ) -> Result<Box<dyn EventConsumer>, PortError> {
        let partitions = self.shared.partitions;
        let mut state = self.shared.state.lock();
        let member = state.next_member;
        state.next_member += 1;
        let topic_state = state.topic(topic, partitions);
        let group_state = topic_state.groups.entry(group.to_owned()).or_insert_with(|| Group {
            committed: vec![0; partitions as usize],
            members: BTreeSet::new(),
            instances: HashMap::new(),
            generation: 0,
        });
        if let Some(name) = instance
            && let Some(replaced) = group_state.instances.insert(name.to_owned(), member)
        {
            // The old member under this name is fenced: it owns nothing any more.
            group_state.members.remove(&replaced);
        }
        group_state.members.insert(member);
        group_state.generation += 1;
        let changes = topic_state.changes.subscribe();
        topic_state.wake();
        Ok(Box::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            topic: topic.to_owned(),
            group: group.to_owned(),
            member,
            // Behind the group's (at least 1), so the first `next` takes the assignment.
            generation: 0,
            assigned: Vec::new(),
            positions: vec![0; partitions as usize],
            turn: 0,
            changes,
            joined: true,
        }))
    }

    async fn follow(&self, topic: &str) -> Result<Box<dyn EventFollower>, PortError> {
        let partitions = self.shared.partitions;
        let mut state = self.shared.state.lock();
        let topic_state = state.topic(topic, partitions);
        let positions = topic_state.logs.iter().map(|log| log.len() as u64).collect();
        let changes = topic_state.changes.subscribe();
        Ok(Box::new(MemoryFollower { shared: Arc::clone(&self.shared), topic: topic.to_owned(), positions, changes }))
    }
}

struct MemoryFollower {
    shared: Arc<Shared>,
    topic: String,
    /// Per partition: the next offset to deliver.
    positions: Vec<u64>,
    changes: watch::Receiver<u64>,
}

impl MemoryFollower {
    /// The next record at or after the positions, lowest partition first; never waits.
    fn poll(&mut self) -> Option<Record> {
        let state = self.shared.state.lock();
        let topic = state.topics.get(&self.topic)?;
        let (p, record) = topic
            .logs
            .iter()
            .enumerate()
            .find_map(|(p, log)| log.get(self.positions[p] as usize).map(|record| (p, record.clone())))?;
        self.positions[p] += 1;
        Some(record)
    }
}

#[async_trait]
impl EventFollower for MemoryFollower {
    async fn next(&mut self) -> Result<Record, PortError> {
        loop {
            // As in `MemoryConsumer::next`: seen before looking, so a publish after the look wakes us.
            self.changes.borrow_and_update();
            if let Some(record) = self.poll() {
                return Ok(record);
            }
            self.changes.changed().await.map_err(|_| PortError::unavailable("event bus", "the topic is gone"))?;
        }
    }
}

struct MemoryConsumer {
    shared: Arc<Shared>,
    topic: String,
    group: String,
    member: u64,
    /// The group generation `assigned` and `positions` belong to.
    generation: u64,
    assigned: Vec<u32>,
    /// Per partition: the next offset to deliver (meaningful for the assigned ones).
    positions: Vec<u64>,
    /// Index into `assigned` of the partition to try first, for round-robin.
    turn: usize,
    changes: watch::Receiver<u64>,
    joined: bool,
}

impl MemoryConsumer {
    /// The next record at or after this member's positions, if any; never waits.
    fn poll(&mut self) -> Option<Record> {
        let shared = Arc::clone(&self.shared);
        let state = shared.state.lock();
        let topic = state.topics.get(&self.topic)?;
        let group = topic.groups.get(&self.group)?;
        if group.generation != self.generation {
            self.generation = group.generation;
            self.assigned = group.assignment(self.member);
            for &p in &self.assigned {
                self.positions[p as usize] = group.committed[p as usize];
            }
            self.turn = 0;
        }
        let count = self.assigned.len();
        for step in 0..count {
            let slot = (self.turn + step) % count;
            let p = self.assigned[slot] as usize;
            if let Some(record) = topic.logs[p].get(self.positions[p] as usize) {
                self.positions[p] += 1;
                self.turn = (slot + 1) % count;
                return Some(record.clone());
            }
        }
        None
    }

    fn leave(&mut self) {
        if !std::mem::replace(&mut self.joined, false) {
            return;
        }
        let mut state = self.shared.state.lock();
        if let Some(topic) = state.topics.get_mut(&self.topic) {
            if let Some(group) = topic.groups.get_mut(&self.group) {
                group.instances.retain(|_, member| *member != self.member);
                if group.members.remove(&self.member) {
                    group.generation += 1;
                }
            }
            topic.wake();
        }
    }
}

#[async_trait]
impl EventConsumer for MemoryConsumer {
    async fn next(&mut self) -> Result<Record, PortError> {
        loop {
            // Mark the current version seen before looking, so that a change after the look wakes us.
            self.changes.borrow_and_update();
            if self.is_lost() {
                return Err(PortError::unavailable("event bus", "fenced: a newer member joined under this one's name"));
            }
            if let Some(record) = self.poll() {
                return Ok(record);
            }
            // The only await: dropping the future here loses nothing (cancel-safe).
            self.changes.changed().await.map_err(|_| PortError::unavailable("event bus", "the topic is gone"))?;
        }
    }

    /// Like Kafka's fencing: a newer member under this one's static name replaced it.
    fn is_lost(&self) -> bool {
        let state = self.shared.state.lock();
        let group = state.topics.get(&self.topic).and_then(|topic| topic.groups.get(&self.group));
        self.joined && group.is_some_and(|g| !g.members.contains(&self.member))
    }

    async fn commit(&mut self, record: &Record) -> Result<(), PortError> {
        if record.topic != self.topic {
            return Err(anyhow::anyhow!("a record of topic {} committed on topic {}", record.topic, self.topic).into());
        }
        let mut state = self.shared.state.lock();
        let group = state
            .topics
            .get_mut(&self.topic)
            .and_then(|topic| topic.groups.get_mut(&self.group))
            .ok_or_else(|| anyhow::anyhow!("consumer group {} of topic {} is gone", self.group, self.topic))?;
        // Like Kafka, refuse a commit for a partition that a rebalance gave away: its new owner
        // resumes from the committed offset, and this commit could move it backwards.
        if !group.assignment(self.member).contains(&record.partition) {
            return Err(anyhow::anyhow!(
                "partition {} of topic {} is no longer assigned to this consumer; its records will be delivered again",
                record.partition,
                self.topic
            )
            .into());
        }
        group.committed[record.partition as usize] = record.offset + 1;
        Ok(())
    }

    fn backlog(&self) -> BoxFuture<'static, Result<Vec<PartitionLag>, PortError>> {
        let state = self.shared.state.lock();
        let Some(topic) = state.topics.get(&self.topic) else { return Box::pin(std::future::ready(Ok(Vec::new()))) };
        let committed = topic.groups.get(&self.group).map(|g| g.committed.clone()).unwrap_or_default();
        let lags = topic
            .logs
            .iter()
            .enumerate()
            .map(|(p, log)| PartitionLag {
                partition: p as u32,
                committed: committed.get(p).copied().unwrap_or(0),
                end: log.len() as u64,
            })
            .collect();
        Box::pin(std::future::ready(Ok(lags)))
    }

    async fn close(mut self: Box<Self>) {
        self.leave();
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    /// A key that lands in `partition` of a 3-partition topic.
    fn key_in(partition: u32, salt: &str) -> String {
        (0..).map(|i| format!("{salt}-{i}")).find(|key| partition_for(key, 3) == partition).unwrap()
    }

    async fn next(consumer: &mut Box<dyn EventConsumer>) -> Record {
        timeout(WAIT, consumer.next()).await.expect("no record in time").unwrap()
    }

    async fn quiet(consumer: &mut Box<dyn EventConsumer>) -> bool {
        timeout(Duration::from_millis(200), consumer.next()).await.is_err()
    }

    #[test]
    fn partitioning_is_fixed_fnv1a() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(partition_for("a", 3), (0xaf63_dc4c_8601_ec8c_u64 % 3) as u32);
        assert_eq!(MemoryEventBus::new(0).partitions(), 1);
    }

    #[tokio::test]
    async fn waiting_next_is_woken_by_publish() {
        let bus = Arc::new(MemoryEventBus::default());
        let mut consumer = bus.subscribe("t", "g").await.unwrap();
        let publisher = Arc::clone(&bus);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            publisher.publish("t", "k", b"late").await.unwrap();
        });
        assert_eq!(next(&mut consumer).await.payload, b"late");
    }

    #[tokio::test]
    async fn cancelled_next_loses_nothing() {
        let bus = MemoryEventBus::default();
        let mut consumer = bus.subscribe("t", "g").await.unwrap();
        assert!(quiet(&mut consumer).await);
        bus.publish("t", "k", b"0").await.unwrap();
        let record = next(&mut consumer).await;
        assert_eq!((record.offset, record.payload.as_slice()), (0, &b"0"[..]));
    }

    #[tokio::test]
    async fn partitions_are_served_round_robin() {
        let bus = MemoryEventBus::default();
        let keys: Vec<String> = (0..3).map(|p| key_in(p, "rr")).collect();
        for _ in 0..2 {
            for key in &keys {
                bus.publish("t", key, key.as_bytes()).await.unwrap();
            }
        }
        let mut consumer = bus.subscribe("t", "g").await.unwrap();
        let mut order = Vec::new();
        for _ in 0..6 {
            let record = next(&mut consumer).await;
            order.push((record.partition, record.offset));
        }
        assert_eq!(order, [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]);
    }

    #[tokio::test]
    async fn dropped_member_hands_its_partitions_over() {
        let bus = MemoryEventBus::default();
        let mut first = bus.subscribe("t", "g").await.unwrap();
        let second = bus.subscribe("t", "g").await.unwrap();
        let odd = key_in(1, "drop");
        bus.publish("t", &odd, b"p1").await.unwrap();
        // Partition 1 belongs to the second member while it is there.
        assert!(quiet(&mut first).await);
        drop(second);
        let record = next(&mut first).await;
        assert_eq!((record.partition, record.payload.as_slice()), (1, &b"p1"[..]));
    }

    #[tokio::test]
    async fn rebalance_restarts_from_committed_offsets() {
        let bus = MemoryEventBus::default();
        let key = key_in(0, "rebalance");
        for payload in [b"0", b"1", b"2"] {
            bus.publish("t", &key, payload).await.unwrap();
        }
        let mut first = bus.subscribe("t", "g").await.unwrap();
        let zero = next(&mut first).await;
        first.commit(&zero).await.unwrap();
        assert_eq!(next(&mut first).await.offset, 1);
        // A join rebalances; partition 0 stays with the first member, from the committed offset.
        let mut second = bus.subscribe("t", "g").await.unwrap();
        assert_eq!(next(&mut first).await.offset, 1);
        assert!(quiet(&mut second).await);
    }

    #[tokio::test]
    async fn extra_members_wait_for_a_partition() {
        let bus = MemoryEventBus::new(1);
        let mut first = bus.subscribe("t", "g").await.unwrap();
        let mut second = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", "k", b"x").await.unwrap();
        assert!(quiet(&mut second).await);
        assert_eq!(next(&mut first).await.payload, b"x");
        first.close().await;
        // The record was not committed, so the partition's new owner gets it again.
        assert_eq!(next(&mut second).await.payload, b"x");
    }

    #[tokio::test]
    async fn commits_are_refused_for_partitions_given_away() {
        let bus = MemoryEventBus::default();
        let mut first = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", &key_in(1, "away"), b"x").await.unwrap();
        let record = next(&mut first).await;
        let _second = bus.subscribe("t", "g").await.unwrap();
        assert!(first.commit(&record).await.is_err());

        let mut other = bus.subscribe("u", "g").await.unwrap();
        assert!(other.commit(&record).await.is_err(), "a record of another topic");
    }

    #[tokio::test]
    async fn topics_and_groups_are_independent() {
        let bus = MemoryEventBus::default();
        bus.publish("a", "k", b"a").await.unwrap();
        bus.publish("b", "k", b"b").await.unwrap();
        let mut on_a = bus.subscribe("a", "g").await.unwrap();
        let mut on_b = bus.subscribe("b", "g").await.unwrap();
        let record = next(&mut on_a).await;
        on_a.commit(&record).await.unwrap();
        assert_eq!(record.payload, b"a");
        assert_eq!(next(&mut on_b).await.payload, b"b");
        assert!(quiet(&mut on_a).await);
    }
}
