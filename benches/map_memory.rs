//! Bytes per entry of each map at 1M `u64 → u64` entries: gosync against papaya, dashmap and
//! scc. A plain program (no criterion): a counting global allocator reports the bytes live
//! after filling each map, less those live before, as one `MEMORY map_1m <map>
//! bytes_per_entry=<n>` line per map, which `cargo xtask bench` puts in the report.
//!
//! `cargo bench -p gosync-benches --bench map_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTRIES: u64 = 1_000_000;

/// Prints the bytes per entry of the map that `fill` builds.
fn measure<M>(name: &str, fill: impl FnOnce() -> M) {
    let before = LIVE.load(Ordering::Relaxed);
    let m = fill();
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "MEMORY map_1m {name} bytes_per_entry={:.1}",
        (after - before) as f64 / ENTRIES as f64
    );
    drop(m);
}

fn main() {
    measure("gosync", || {
        let m = gosync_map::Map::new();
        (0..ENTRIES).for_each(|k| m.store(k, k));
        m
    });
    measure("papaya", || {
        let m = papaya::HashMap::new();
        (0..ENTRIES).for_each(|k| {
            m.pin().insert(k, k);
        });
        m
    });
    measure("dashmap", || {
        let m = dashmap::DashMap::new();
        (0..ENTRIES).for_each(|k| {
            m.insert(k, k);
        });
        m
    });
    measure("scc", || {
        let m = scc::HashMap::new();
        (0..ENTRIES).for_each(|k| {
            let _ = m.insert(k, k);
        });
        m
    });
}
