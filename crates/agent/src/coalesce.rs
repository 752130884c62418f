//! Runs the core's event coalescer (`serf_core::coalesce`) between the agent's event
//! broadcast and the handlers and RPC streams, on tokio's clock.

pub(crate) use serf_core::coalesce::CoalescedEvent;
use serf_core::coalesce::{CoalesceConfig, Coalescer};
use serf_core::Event;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// Runs a [`Coalescer`] between the agent's event broadcast and a consumer.
///
/// Returns (after flushing what is pending) when the broadcast closes, or as
/// soon as the consumer is gone. A lagging receiver logs how many events were
/// lost and continues.
pub(crate) async fn run(
    mut rx: broadcast::Receiver<Event>,
    cfg: CoalesceConfig,
    tx: mpsc::Sender<CoalescedEvent>,
) {
    let mut c = Coalescer::new(cfg);
    let start = Instant::now();
    loop {
        let deadline = c.next_deadline().map(|d| start + d);
        let out = tokio::select! {
            r = rx.recv() => match r {
                Ok(e) => c.push(e, start.elapsed()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("Event coalescer fell behind, {n} events were lost");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    for e in c.flush_all() {
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
            },
            _ = crate::shared::sleep_until_opt(deadline) => c.poll(start.elapsed()),
        };
        for e in out {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf_core::coalesce::Periods;
    use serf_core::{Member, MemberStatus};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    fn member(name: &str) -> Member {
        Member {
            name: name.to_string(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 7946,
            tags: Vec::new(),
            status: MemberStatus::Alive,
            vsn: [2, 5, 5, 2, 5, 4],
            status_ltime: 1,
            leave_time: None,
        }
    }

    fn user(name: &str, ltime: u64, coalesce: bool) -> Event {
        Event::User {
            ltime,
            name: name.to_string(),
            payload: Vec::new(),
            coalesce,
        }
    }

    fn names(e: &CoalescedEvent) -> (&'static str, Vec<String>) {
        match e {
            CoalescedEvent::Members { kind, members } => (
                kind.as_str(),
                members.iter().map(|m| m.name.clone()).collect(),
            ),
            CoalescedEvent::Other(Event::User { name, ltime, .. }) => {
                ("user", vec![format!("{name}@{ltime}")])
            }
            CoalescedEvent::Other(_) => ("other", vec![]),
        }
    }

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|x| x.to_string()).collect()
    }

    #[tokio::test]
    async fn runner_coalesces_in_real_time() {
        let cfg = CoalesceConfig {
            member: Some(Periods {
                period: Duration::from_millis(600),
                quiescent: Duration::from_millis(200),
            }),
            user: Some(Periods::default()),
        };
        let (btx, brx) = broadcast::channel(16);
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(run(brx, cfg, tx));
        let start = Instant::now();
        btx.send(Event::MemberJoin(member("a"))).expect("send");
        btx.send(Event::MemberJoin(member("b"))).expect("send");
        btx.send(user("x", 1, false)).expect("send");
        let first = rx.recv().await.expect("event");
        assert_eq!(names(&first), ("user", s(&["x@1"])));
        let second = rx.recv().await.expect("event");
        assert_eq!(names(&second), ("member-join", s(&["a", "b"])));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        // Pending at shutdown: flushed when the broadcast closes.
        btx.send(Event::MemberLeave(member("a"))).expect("send");
        btx.send(user("c", 9, true)).expect("send");
        drop(btx);
        let mut rest = Vec::new();
        while let Some(e) = rx.recv().await {
            rest.push(names(&e));
        }
        assert_eq!(
            rest,
            vec![("user", s(&["c@9"])), ("member-leave", s(&["a"]))]
        );
        task.await.expect("join");
    }
}
