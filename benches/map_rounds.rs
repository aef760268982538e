//! Map, interleaved rounds: the workloads of `map.rs`, with every map timed in every round.
//!
//! Not a criterion bench. Criterion times one implementation for about 4 s, then the next; on a
//! host whose core speed changes by 2–3× from one second to the next, two medians taken
//! seconds apart compare the host's moods as much as the maps. Here each group builds and
//! fills the four maps once, then runs rounds: in each round every map, starting with map
//! `round mod 4`, gets an untimed warm-up and then a timed batch of a fixed number of
//! operations on 2 threads (tens of milliseconds), all with the same keys. Each round gives
//! each peer the ratio peer time / gosync time, measured within the same few hundred
//! milliseconds; the program reports the quartiles of those ratios over the rounds, in how
//! many rounds gosync was faster, and each map's median ns per operation.
//!
//! Under `cargo bench` a group runs [`ROUNDS`] rounds ([`ROUNDS_1M`] at 1M keys), about a
//! minute in all on an idle machine; otherwise (`cargo test --benches`) two rounds of one
//! iteration over at most [`TEST_KEYS`] keys. A non-flag argument keeps the groups whose id
//! (`map_rounds/<group>`) contains it. Output, one line per group and peer, parsed by
//! `cargo xtask bench`:
//! `ROUNDS <group> <peer> rounds=<n> batch_ops=<n> ratio_p25=<r> ratio_p50=<r> ratio_p75=<r>
//! gosync_faster=<k> gosync_ns=<ns per op> peer_ns=<ns per op>`.

use std::time::Duration;

use gosync_benches::map_workload::{MapImpl, Run, Workload, WORKLOADS};
use gosync_benches::OPS_PER_ITER;

/// Rounds per group over 10k keys.
const ROUNDS: usize = 60;
/// Rounds per group over 1M keys, whose maps take longer to fill and to run.
const ROUNDS_1M: usize = 30;
/// Iterations of [`OPS_PER_ITER`] operations in a timed batch over 10k keys: 600k operations,
/// 15–50 ms for most maps on an idle machine.
const BATCH_ITERS: u64 = 300;
/// Iterations in a timed batch over 1M keys, where an operation misses the cache.
const BATCH_ITERS_1M: u64 = 60;
/// The untimed warm-up before each batch is this fraction of the batch.
const WARM_UP_DIVISOR: u64 = 5;
/// The largest key space outside `cargo bench`, so that `cargo test --benches` stays quick.
const TEST_KEYS: u64 = 1_000;

/// How one group runs.
struct Plan {
    rounds: usize,
    batch_iters: u64,
    warm_up_iters: u64,
}

impl Plan {
    fn new(w: &Workload, bench: bool) -> Self {
        if !bench {
            return Plan {
                rounds: 2,
                batch_iters: 1,
                warm_up_iters: 1,
            };
        }
        let (rounds, batch_iters) = if w.keys >= 1_000_000 {
            (ROUNDS_1M, BATCH_ITERS_1M)
        } else {
            (ROUNDS, BATCH_ITERS)
        };
        Plan {
            rounds,
            batch_iters,
            warm_up_iters: (batch_iters / WARM_UP_DIVISOR).max(1),
        }
    }
}

/// Runs the rounds of one group and prints its lines.
fn group(w: &Workload, plan: &Plan) {
    let maps: Vec<Box<dyn Run>> = MapImpl::ALL.iter().map(|m| m.filled(w.keys)).collect();
    // times[map][round]
    let mut times = vec![Vec::with_capacity(plan.rounds); maps.len()];
    for round in 0..plan.rounds {
        // The same keys for every map in a round, new keys each round; the warm-up draws
        // others, so that it does not bring the batch's own keys into the cache.
        let seed = 1_000 * (round as u64 + 1);
        for turn in 0..maps.len() {
            let i = (round + turn) % maps.len();
            maps[i].run(w, plan.warm_up_iters, seed + 500);
            times[i].push(maps[i].run(w, plan.batch_iters, seed));
        }
    }
    let batch_ops = plan.batch_iters * OPS_PER_ITER;
    let ns_per_op = |t: &[Duration]| {
        let mut ns: Vec<f64> = t.iter().map(|t| t.as_nanos() as f64).collect();
        quantile(&mut ns, 0.5) / batch_ops as f64
    };
    let gosync = &times[0];
    for (map, peer) in MapImpl::ALL.iter().zip(&times).skip(1) {
        let mut ratios: Vec<f64> = peer
            .iter()
            .zip(gosync)
            .map(|(p, g)| p.as_secs_f64() / g.as_secs_f64())
            .collect();
        let gosync_faster = peer.iter().zip(gosync).filter(|(p, g)| p > g).count();
        println!(
            "ROUNDS {} {} rounds={} batch_ops={batch_ops} ratio_p25={:.3} ratio_p50={:.3} \
             ratio_p75={:.3} gosync_faster={gosync_faster} gosync_ns={:.2} peer_ns={:.2}",
            w.id,
            map.name(),
            plan.rounds,
            quantile(&mut ratios, 0.25),
            quantile(&mut ratios, 0.5),
            quantile(&mut ratios, 0.75),
            ns_per_op(gosync),
            ns_per_op(peer),
        );
    }
}

/// The `q` quantile of `values` (sorting them), interpolating linearly between the two
/// nearest.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = q * (values.len() - 1) as f64;
    let (below, above) = (at.floor() as usize, at.ceil() as usize);
    values[below] + (values[above] - values[below]) * (at - below as f64)
}

fn main() {
    gosync_benches::start_neighbours();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let filter = args.iter().find(|a| !a.starts_with('-'));
    for w in &WORKLOADS {
        if filter.is_some_and(|f| !format!("map_rounds/{}", w.id).contains(f.as_str())) {
            continue;
        }
        let w = if bench {
            *w
        } else {
            Workload {
                keys: w.keys.min(TEST_KEYS),
                ..*w
            }
        };
        group(&w, &Plan::new(&w, bench));
    }
}
