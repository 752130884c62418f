//! Polling with deadlines: until a condition holds, a member has a status, every agent sees the others.

use super::*;

/// Polls `f` every `poll` until it returns true or `timeout` passes.
/// Returns whether it became true.
pub fn wait_until(timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(poll);
    }
}

/// Polls `f` every `poll` until it returns `Ok` or `timeout` passes; the error
/// then is the last one seen (prefixed with the timeout).
pub fn wait_for<T>(
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "still not true after {:.1}s: {e}",
                    start.elapsed().as_secs_f64()
                ))
            }
            Err(_) => thread::sleep(poll),
        }
    }
}

/// Waits until the agent at `rpc_addr` lists `name` with `status`.
/// Returns the time it took.
pub fn wait_member_status(
    rpc_addr: &str,
    name: &str,
    status: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(timeout, POLL, || {
        let view = members(rpc_addr)?;
        match view.iter().find(|m| m.name == name) {
            Some(m) if m.status == status => Ok(()),
            _ => Err(format!(
                "{rpc_addr} does not list {name} as {status}: {}",
                fmt_view(&view)
            )),
        }
    })?;
    Ok(start.elapsed())
}

/// Waits until every agent lists every name in `alive` with status `alive`.
/// Returns the time it took.
pub fn wait_all_see(
    agents: &[&Agent],
    alive: &[&str],
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(timeout, POLL, || {
        for a in agents {
            let view = a.members()?;
            for name in alive {
                if !view.iter().any(|m| m.name == *name && m.status == "alive") {
                    return Err(format!(
                        "{} does not see {name} alive: {}",
                        a.name(),
                        fmt_view(&view)
                    ));
                }
            }
        }
        Ok(())
    })?;
    Ok(start.elapsed())
}

/// Waits until every observer lists `name` with `status`, recording when each
/// observer first did. Times are measured from `since` (e.g. the instant of
/// the kill). Returns `(observer name, time)` per observer.
pub fn wait_all_report(
    observers: &[&Agent],
    name: &str,
    status: &str,
    since: Instant,
    timeout: Duration,
) -> Result<Vec<(String, Duration)>, String> {
    let mut seen: Vec<Option<Duration>> = vec![None; observers.len()];
    let mut last: Vec<String> = vec![String::new(); observers.len()];
    let deadline = Instant::now() + timeout;
    loop {
        for (i, o) in observers.iter().enumerate() {
            if seen[i].is_some() {
                continue;
            }
            match o.members() {
                Ok(view) => {
                    if view.iter().any(|m| m.name == name && m.status == status) {
                        seen[i] = Some(since.elapsed());
                    } else {
                        last[i] = fmt_view(&view);
                    }
                }
                Err(e) => last[i] = e,
            }
        }
        if seen.iter().all(Option::is_some) {
            return Ok(observers
                .iter()
                .zip(seen)
                .map(|(o, t)| (o.name().to_string(), t.unwrap_or_default()))
                .collect());
        }
        if Instant::now() >= deadline {
            let pending: Vec<String> = observers
                .iter()
                .zip(&seen)
                .zip(&last)
                .filter(|((_, t), _)| t.is_none())
                .map(|((o, _), l)| format!("{} sees {l}", o.name()))
                .collect();
            return Err(format!(
                "after {:.1}s not every observer reports {name} as {status}: {}",
                since.elapsed().as_secs_f64(),
                pending.join("; ")
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Checks one agent's view: every agent in `expected` is listed `alive` with
/// the right address, port and exactly its tags.
pub fn check_view(observer: &Agent, expected: &[&Agent]) -> Result<(), String> {
    let view = observer.members()?;
    for e in expected {
        let Some(m) = view.iter().find(|m| m.name == e.name()) else {
            return Err(format!(
                "{} does not list {}: {}",
                observer.name(),
                e.name(),
                fmt_view(&view)
            ));
        };
        if m.status != "alive" {
            return Err(format!(
                "{} lists {} as {:?}, not alive: {}",
                observer.name(),
                e.name(),
                m.status,
                fmt_view(&view)
            ));
        }
        if m.addr != e.addr() || m.port != e.port() {
            return Err(format!(
                "{} lists {} at {} (port {}), expected {}",
                observer.name(),
                e.name(),
                m.addr,
                m.port,
                e.addr()
            ));
        }
        if &m.tags != e.tags() {
            return Err(format!(
                "{} lists {} with tags {:?}, expected {:?}",
                observer.name(),
                e.name(),
                m.tags,
                e.tags()
            ));
        }
    }
    Ok(())
}

/// Waits until every agent's view lists every agent alive with the right
/// address and tags ([`check_view`]). Returns the time it took.
pub fn wait_converged(agents: &[&Agent], timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(timeout, POLL, || {
        agents.iter().try_for_each(|a| check_view(a, agents))
    })?;
    Ok(start.elapsed())
}
