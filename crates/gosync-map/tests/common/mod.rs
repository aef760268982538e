//! Helpers shared by the map's test binaries: hashers that force collisions, and values that
//! count their live copies.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A hasher that keeps `f(hash of the key)`: for forcing collisions.
#[derive(Clone, Copy, Default)]
pub(crate) struct Shaped<const MODE: u8>;

pub(crate) struct ShapedHasher<const MODE: u8>(std::collections::hash_map::DefaultHasher);

impl<const MODE: u8> Hasher for ShapedHasher<MODE> {
    fn finish(&self) -> u64 {
        let h = self.0.finish();
        match MODE {
            0 => 42,
            1 => h & (0xF << 60),
            _ => h & 0xFF,
        }
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}

impl<const MODE: u8> BuildHasher for Shaped<MODE> {
    type Hasher = ShapedHasher<MODE>;
    fn build_hasher(&self) -> Self::Hasher {
        ShapedHasher(Default::default())
    }
}

/// Counts live values, to check that each is dropped exactly once.
#[derive(Debug)]
pub(crate) struct Counted {
    pub(crate) id: u64,
    pub(crate) live: Arc<AtomicUsize>,
}

impl Counted {
    pub(crate) fn new(id: u64, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self {
            id,
            live: Arc::clone(live),
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Self::new(self.id, &self.live)
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let before = self.live.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "a value was dropped twice");
    }
}

/// Runs the test `name` alone in a child process (this test binary) and returns its output, or
/// `None` when called in that child (the caller then runs the test's body). For tests whose
/// failure aborts the process. Under miri, which cannot spawn processes, runs in-process.
// Not every test binary that includes this module spawns children.
#[allow(dead_code)]
pub(crate) fn in_child_process(name: &str) -> Option<std::process::Output> {
    if cfg!(miri) || std::env::var_os("GOSYNC_HOSTILE_CHILD").is_some() {
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let name = name.to_owned();
    Some(gosync_testkit::within(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                &name,
                "--include-ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("GOSYNC_HOSTILE_CHILD", "1")
            .output()
            .unwrap()
    }))
}
