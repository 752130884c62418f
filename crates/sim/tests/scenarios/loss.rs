//! (c) Random datagram loss must not get live nodes declared dead.

use crate::common::*;

struct LossRun {
    deaths: usize,
    refutations: u64,
    probes_failed: u64,
    max_health: u32,
    dropped: u64,
    sent: u64,
}

fn run(seed: u64, n: usize, loss: f64, minutes: f64, tcp_pings: bool) -> LossRun {
    let mut sim = lan_sim(seed);
    if !tcp_pings {
        sim.set_config_hook(|_, c| c.disable_tcp_pings = true);
    }
    let ids = converged_cluster(&mut sim, n);
    sim.set_loss(loss);
    let mut max_health = 0;
    // Sample the health scores every 10 s while running.
    for _ in 0..(minutes * 6.0) as usize {
        sim.run_for(secs(10.0));
        max_health = ids
            .iter()
            .map(|&i| sim.core(i).health())
            .fold(max_health, u32::max);
    }
    let deaths = dead_events(&sim);
    assert!(
        deaths.is_empty(),
        "seed {seed}: live nodes declared dead under {loss} loss: {deaths:?}"
    );
    // Suspicions may be outstanding at the end; without loss they clear.
    sim.set_loss(0.0);
    assert!(
        sim.run_until(|s| s.converged(&ids), secs(60.0)),
        "seed {seed}: not converged after loss ended"
    );
    let st = sim.stats();
    LossRun {
        deaths: deaths.len(),
        refutations: sum_stat(&sim, &ids, |s| s.refutations),
        probes_failed: sum_stat(&sim, &ids, |s| s.probes_failed),
        max_health,
        dropped: st.dropped_loss,
        sent: st.packets_sent,
    }
}

fn report(label: &str, runs: &[LossRun]) {
    let refs: u64 = runs.iter().map(|r| r.refutations).sum();
    let pf: u64 = runs.iter().map(|r| r.probes_failed).sum();
    let deaths: usize = runs.iter().map(|r| r.deaths).sum();
    let mh = runs.iter().map(|r| r.max_health).max().unwrap_or(0);
    let dropped: u64 = runs.iter().map(|r| r.dropped).sum();
    let sent: u64 = runs.iter().map(|r| r.sent).sum();
    println!(
        "[loss] {label}: {} seeds, deaths={deaths}, failed probes={pf}, refutations={refs}, max health={mh}, \
         datagrams dropped {dropped}/{sent} ({:.1}%)",
        runs.len(),
        100.0 * dropped as f64 / sent.max(1) as f64
    );
}

/// Real LAN config (TCP fallback pings on), 10 nodes, 5 % loss, 5 virtual minutes, 20
/// seeds: no deaths. (Streams are reliable, so the TCP fallback ping rescues any probe
/// whose UDP legs were all lost; failed probes are expected to be ~0.)
#[test]
fn no_deaths_under_5pct_loss_lan() {
    let runs: Vec<_> = (0..20).map(|seed| run(seed, 10, 0.05, 5.0, true)).collect();
    report("LAN, 10 nodes, 5% loss, 5 min", &runs);
}

/// Harder: no TCP fallback, 10 % loss, 10 nodes, 5 virtual minutes, 10 seeds. Probes do
/// fail (direct and all 3 indirect paths lost), nodes get suspected and must refute in
/// time (buddy-system pings and gossip); suspicions happen, deaths must not.
#[test]
fn no_deaths_under_10pct_loss_without_tcp_fallback() {
    let runs: Vec<_> = (100..110)
        .map(|seed| run(seed, 10, 0.10, 5.0, false))
        .collect();
    report("no TCP ping, 10 nodes, 10% loss, 5 min", &runs);
    assert!(
        runs.iter().map(|r| r.refutations).sum::<u64>() > 0,
        "expected some suspicions to be refuted"
    );
}
