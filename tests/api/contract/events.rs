//! The `EventBus` contract. The tests assume nothing about the number of partitions, except that
//! sharing them between two members needs at least two.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryEventBus;
use agora::ports::events::{EventBus, EventConsumer, Message, PartitionLag, Record};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};

use super::{WAIT, unique};

/// `events_contract!(name, || async { ... as Arc<dyn EventBus> })`: a module `name` with one
/// `#[tokio::test]` per contract test, each on a bus from the factory. Attributes before `name`
/// (e.g. `#[ignore = "needs Kafka"]`) go on every test.
macro_rules! events_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(events, [$(#[$attr])*] $name, $make;
            ping_answers,
            per_key_order,
            same_key_same_partition,
            resume_after_restart_from_committed_offset,
            uncommitted_records_are_redelivered,
            new_group_starts_at_the_beginning,
            group_members_share_partitions,
            a_batch_keeps_order_and_headers,
            backlog_counts_what_waits,
            a_static_member_resumes_at_once,
            a_follower_reads_every_partition_from_where_it_began,
            a_member_replaced_under_its_name_is_lost,
        );
    };
}

events_contract!(memory, || async { Some(Arc::new(MemoryEventBus::default()) as Arc<dyn EventBus>) });
// The same contract on the real server (scripts/infra up).
events_contract!(kafka, || async { crate::real::event_bus().await.map(|b| Arc::new(b) as Arc<dyn EventBus>) });

/// How long a consumer must stay silent to count as having nothing more.
const QUIET: Duration = Duration::from_secs(1);

async fn publish(bus: &dyn EventBus, topic: &str, key: &str, payload: &str) {
    timeout(WAIT, bus.publish(topic, key, payload.as_bytes()))
        .await
        .expect("publish timed out")
        .expect("publish failed");
}

async fn subscribe(bus: &dyn EventBus, topic: &str, group: &str) -> Box<dyn EventConsumer> {
    timeout(WAIT, bus.subscribe(topic, group)).await.expect("subscribe timed out").expect("subscribe failed")
}

async fn next(consumer: &mut Box<dyn EventConsumer>) -> Record {
    timeout(WAIT, consumer.next()).await.expect("no record in time").expect("next failed")
}

async fn next_n(consumer: &mut Box<dyn EventConsumer>, n: usize) -> Vec<Record> {
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        records.push(next(consumer).await);
    }
    records
}

async fn commit(consumer: &mut Box<dyn EventConsumer>, record: &Record) {
    timeout(WAIT, consumer.commit(record)).await.expect("commit timed out").expect("commit failed");
}

async fn assert_quiet(consumer: &mut Box<dyn EventConsumer>) {
    if let Ok(record) = timeout(QUIET, consumer.next()).await {
        panic!("expected no more records, got {record:?}");
    }
}

fn payloads(records: &[Record]) -> Vec<String> {
    records.iter().map(|record| String::from_utf8_lossy(&record.payload).into_owned()).collect()
}

pub async fn ping_answers(bus: Arc<dyn EventBus>) {
    timeout(Duration::from_secs(1), bus.ping()).await.expect("ping took over a second").expect("ping failed");
}

/// Records of one key arrive in publish order, each exactly once, with their topic and key.
pub async fn per_key_order(bus: Arc<dyn EventBus>) {
    let topic = unique("topic");
    let keys: Vec<String> = (0..5).map(|i| unique(&format!("key{i}"))).collect();
    for i in 0..10 {
        for key in &keys {
            publish(&*bus, &topic, key, &format!("{key}/{i}")).await;
        }
    }
    let mut consumer = subscribe(&*bus, &topic, &unique("group")).await;
    let records = next_n(&mut consumer, 50).await;
    assert_quiet(&mut consumer).await;

    let distinct: HashSet<(u32, u64)> = records.iter().map(|record| (record.partition, record.offset)).collect();
    assert_eq!(distinct.len(), 50, "a record was delivered twice");
    for key in &keys {
        let mine: Vec<Record> = records.iter().filter(|record| &record.key == key).cloned().collect();
        let expected: Vec<String> = (0..10).map(|i| format!("{key}/{i}")).collect();
        assert_eq!(payloads(&mine), expected, "order of key {key}");
        assert!(mine.windows(2).all(|pair| pair[0].offset < pair[1].offset), "offsets of key {key}");
        assert!(mine.iter().all(|record| record.topic == topic));
    }
    consumer.close().await;
}

/// Every record of a key is in one partition, and a partition's records arrive in offset order.
pub async fn same_key_same_partition(bus: Arc<dyn EventBus>) {
    let topic = unique("topic");
    let keys: Vec<String> = (0..20).map(|i| unique(&format!("key{i}"))).collect();
    for round in 0..3 {
        // A different interleaving each round.
        for key in keys.iter().rev().skip(round).chain(keys.iter().take(round)) {
            publish(&*bus, &topic, key, &format!("{round}")).await;
        }
    }
    let mut consumer = subscribe(&*bus, &topic, &unique("group")).await;
    let records = next_n(&mut consumer, 60).await;

    let mut partition_of: HashMap<&str, u32> = HashMap::new();
    let mut last_offset: HashMap<u32, u64> = HashMap::new();
    for record in &records {
        let partition = *partition_of.entry(&record.key).or_insert(record.partition);
        assert_eq!(record.partition, partition, "key {} in two partitions", record.key);
        if let Some(last) = last_offset.insert(record.partition, record.offset) {
            assert!(record.offset > last, "partition {} out of order", record.partition);
        }
    }
    assert_eq!(partition_of.len(), 20);
    consumer.close().await;
}

/// A group's new consumer resumes right after the last commit of the previous one.
pub async fn resume_after_restart_from_committed_offset(bus: Arc<dyn EventBus>) {
    let (topic, group, key) = (unique("topic"), unique("group"), unique("key"));
    for i in 0..3 {
        publish(&*bus, &topic, &key, &format!("{i}")).await;
    }
    let mut first = subscribe(&*bus, &topic, &group).await;
    for record in next_n(&mut first, 3).await {
        commit(&mut first, &record).await;
    }
    first.close().await;

    for i in 3..5 {
        publish(&*bus, &topic, &key, &format!("{i}")).await;
    }
    let mut second = subscribe(&*bus, &topic, &group).await;
    assert_eq!(payloads(&next_n(&mut second, 2).await), ["3", "4"]);
    assert_quiet(&mut second).await;
    second.close().await;
}

/// A batch lands in order per key, each record with its own headers.
pub async fn a_batch_keeps_order_and_headers(bus: Arc<dyn EventBus>) {
    let topic = unique("topic");
    let keys: Vec<String> = (0..3).map(|i| unique(&format!("key{i}"))).collect();
    let messages: Vec<Message> = (0..30)
        .map(|i| Message {
            key: keys[i % 3].clone(),
            payload: format!("{i}").into_bytes(),
            headers: vec![("x-n".into(), format!("{i}")), ("traceparent".into(), format!("00-{i:032x}-{i:016x}-01"))],
        })
        .collect();
    timeout(WAIT, bus.publish_batch(&topic, &messages)).await.expect("publish timed out").expect("publish failed");
    let mut consumer = subscribe(&*bus, &topic, &unique("group")).await;
    let records = next_n(&mut consumer, 30).await;
    assert_quiet(&mut consumer).await;
    for record in &records {
        let n = String::from_utf8_lossy(&record.payload).into_owned();
        assert_eq!(record.header("x-n"), Some(n.as_str()), "headers travel with their record");
        assert!(record.header("traceparent").is_some());
    }
    for key in &keys {
        let mine: Vec<u32> = records
            .iter()
            .filter(|r| &r.key == key)
            .map(|r| String::from_utf8_lossy(&r.payload).parse().unwrap())
            .collect();
        assert_eq!(mine.len(), 10);
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "order of key {key}: {mine:?}");
    }
    consumer.close().await;
}

/// The backlog shows, for every partition, where the group stands and where the partition ends.
pub async fn backlog_counts_what_waits(bus: Arc<dyn EventBus>) {
    let (topic, group, key) = (unique("topic"), unique("group"), unique("key"));
    for i in 0..5 {
        publish(&*bus, &topic, &key, &format!("{i}")).await;
    }
    let mut consumer = subscribe(&*bus, &topic, &group).await;
    let waiting = |lags: &[PartitionLag]| lags.iter().map(PartitionLag::lag).sum::<u64>();
    let before = timeout(WAIT, consumer.backlog()).await.expect("backlog timed out").expect("backlog failed");
    assert!(!before.is_empty());
    assert_eq!(waiting(&before), 5, "{before:?}");
    let records = next_n(&mut consumer, 5).await;
    commit(&mut consumer, &records[1]).await;
    let after = timeout(WAIT, consumer.backlog()).await.expect("backlog timed out").expect("backlog failed");
    assert_eq!(waiting(&after), 3, "{after:?}");
    let partition = after.iter().find(|p| p.partition == records[1].partition).expect("the record's partition");
    assert_eq!(partition.committed, records[1].offset + 1);
    consumer.close().await;
}

/// A static member that crashed (never closed) and comes back under its name resumes from its
/// group's commit at once, instead of waiting for the group to give its partitions away.
pub async fn a_static_member_resumes_at_once(bus: Arc<dyn EventBus>) {
    let (topic, group, key, name) = (unique("topic"), unique("group"), unique("key"), unique("instance"));
    for i in 0..3 {
        publish(&*bus, &topic, &key, &format!("{i}")).await;
    }
    let mut first = timeout(WAIT, bus.subscribe_as(&topic, &group, Some(&name))).await.unwrap().unwrap();
    let records = next_n(&mut first, 3).await;
    commit(&mut first, &records[0]).await;
    drop(first); // a crash: no goodbye to the group
    let started = Instant::now();
    let mut second = timeout(WAIT, bus.subscribe_as(&topic, &group, Some(&name))).await.unwrap().unwrap();
    assert_eq!(payloads(&next_n(&mut second, 2).await), ["1", "2"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: it waited for a session to time out",
        started.elapsed()
    );
    second.close().await;
}

/// A static member replaced by a newer one under its name (a restart whose old process still
/// runs) can never consume again, and says so, so that its owner joins anew instead of waiting.
pub async fn a_member_replaced_under_its_name_is_lost(bus: Arc<dyn EventBus>) {
    let (topic, group, key, name) = (unique("topic"), unique("group"), unique("key"), unique("instance"));
    publish(&*bus, &topic, &key, "0").await;
    let mut first = timeout(WAIT, bus.subscribe_as(&topic, &group, Some(&name))).await.unwrap().unwrap();
    next(&mut first).await;
    assert!(!first.is_lost());
    let mut second = timeout(WAIT, bus.subscribe_as(&topic, &group, Some(&name))).await.unwrap().unwrap();
    assert_eq!(payloads(&[next(&mut second).await]), ["0"], "the newer member takes over");
    let failed = timeout(WAIT, async {
        loop {
            if first.next().await.is_err() && first.is_lost() {
                return;
            }
        }
    })
    .await;
    assert!(failed.is_ok(), "the replaced member never learnt it was lost");
    assert!(!second.is_lost());
    second.close().await;
}

/// Records handled but not committed are delivered again to the group's next consumer (at least once).
pub async fn uncommitted_records_are_redelivered(bus: Arc<dyn EventBus>) {
    let (topic, group, key) = (unique("topic"), unique("group"), unique("key"));
    for i in 0..5 {
        publish(&*bus, &topic, &key, &format!("{i}")).await;
    }
    let mut first = subscribe(&*bus, &topic, &group).await;
    let records = next_n(&mut first, 5).await;
    assert_eq!(payloads(&records), ["0", "1", "2", "3", "4"]);
    commit(&mut first, &records[1]).await;
    first.close().await;

    let mut second = subscribe(&*bus, &topic, &group).await;
    let again = next_n(&mut second, 3).await;
    assert_eq!(payloads(&again), ["2", "3", "4"]);
    assert_eq!(again[0].offset, records[2].offset);
    assert_quiet(&mut second).await;
    second.close().await;
}

/// A group that never committed reads from the beginning, whatever other groups committed.
pub async fn new_group_starts_at_the_beginning(bus: Arc<dyn EventBus>) {
    let (topic, key) = (unique("topic"), unique("key"));
    for i in 0..3 {
        publish(&*bus, &topic, &key, &format!("{i}")).await;
    }
    let mut first = subscribe(&*bus, &topic, &unique("group")).await;
    let records = next_n(&mut first, 3).await;
    commit(&mut first, &records[2]).await;
    first.close().await;

    let mut other = subscribe(&*bus, &topic, &unique("group")).await;
    assert_eq!(next_n(&mut other, 3).await, records);
    other.close().await;
}

/// Two members of a group share the partitions: each record goes to one of them, and each partition
/// to one member. A real broker may take a while to settle the group (records delivered during a
/// rebalance may come twice), so batches are published until one is shared cleanly.
pub async fn group_members_share_partitions(bus: Arc<dyn EventBus>) {
    let (topic, group) = (unique("topic"), unique("group"));
    let members = [subscribe(&*bus, &topic, &group).await, subscribe(&*bus, &topic, &group).await];
    let (deliveries, mut delivered) = mpsc::unbounded_channel::<(usize, Record)>();
    let (stop, stopped) = watch::channel(false);
    let tasks: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(member, mut consumer)| {
            let (deliveries, mut stopped) = (deliveries.clone(), stopped.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        record = consumer.next() => {
                            let record = record.expect("next failed");
                            // A rebalance may refuse the commit; the record then comes again.
                            let _ = consumer.commit(&record).await;
                            if deliveries.send((member, record)).is_err() {
                                break;
                            }
                        }
                        _ = stopped.changed() => break,
                    }
                }
                consumer.close().await;
            })
        })
        .collect();
    // Only the consumers send now, so `recv` ends if both stop.
    drop(deliveries);

    let deadline = Instant::now() + 3 * WAIT;
    let mut batch = 0;
    loop {
        assert!(Instant::now() < deadline, "the two members never shared the partitions cleanly");
        batch += 1;
        let size = 30;
        for i in 0..size {
            publish(&*bus, &topic, &unique("key"), &format!("{batch}/{i}")).await;
        }
        // Who got each record of this batch, from which partition.
        let mut receivers: HashMap<String, Vec<(usize, u32)>> = HashMap::new();
        while receivers.len() < size {
            let (member, record) =
                timeout(WAIT, delivered.recv()).await.expect("a record was not delivered").expect("a consumer ended");
            let payload = String::from_utf8_lossy(&record.payload).into_owned();
            if payload.starts_with(&format!("{batch}/")) {
                receivers.entry(payload).or_default().push((member, record.partition));
            }
        }
        let once = receivers.values().all(|got| got.len() == 1);
        let partitions_of = |member: usize| -> HashSet<u32> {
            receivers.values().flatten().filter(|got| got.0 == member).map(|got| got.1).collect()
        };
        let (first, second) = (partitions_of(0), partitions_of(1));
        if once && first.is_disjoint(&second) && !first.is_empty() && !second.is_empty() {
            break;
        }
    }

    stop.send(true).unwrap();
    for task in tasks {
        timeout(WAIT, task).await.expect("a consumer did not stop").unwrap();
    }
}

/// A follower gets every record published after `follow` returned, on every partition, in each
/// key's order, and none from before; followers are independent of each other and of groups.
pub async fn a_follower_reads_every_partition_from_where_it_began(bus: Arc<dyn EventBus>) {
    let topic = unique("topic");
    let keys: Vec<String> = (0..6).map(|i| unique(&format!("key{i}"))).collect();
    for key in &keys {
        publish(&*bus, &topic, key, "before").await;
    }
    let follow = |bus: Arc<dyn EventBus>, topic: String| async move {
        timeout(WAIT, bus.follow(&topic)).await.expect("follow timed out").expect("follow failed")
    };
    let mut first = follow(bus.clone(), topic.clone()).await;
    let mut second = follow(bus.clone(), topic.clone()).await;
    for round in 0..2 {
        for key in &keys {
            publish(&*bus, &topic, key, &format!("after {round}")).await;
        }
    }
    for follower in [&mut first, &mut second] {
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for _ in 0..keys.len() * 2 {
            let record = timeout(WAIT, follower.next()).await.expect("no record in time").expect("next failed");
            seen.entry(record.key).or_default().push(String::from_utf8(record.payload).expect("text"));
        }
        for key in &keys {
            assert_eq!(seen.get(key).map(Vec::as_slice), Some(&["after 0".to_string(), "after 1".to_string()][..]));
        }
        assert!(
            timeout(QUIET, follower.next()).await.is_err(),
            "a follower delivers nothing from before it began, nor anything twice"
        );
    }
}
