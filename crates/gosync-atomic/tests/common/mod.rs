//! Helpers shared by the atomic tests: values that count how many were made and dropped.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// Counts values made and dropped.
#[derive(Debug, Default)]
pub(crate) struct Census {
    pub(crate) made: AtomicUsize,
    pub(crate) dropped: AtomicUsize,
}

impl Census {
    pub(crate) fn live(&self) -> usize {
        self.made.load(SeqCst) - self.dropped.load(SeqCst)
    }
}

#[derive(Debug)]
pub(crate) struct Counted {
    pub(crate) census: Arc<Census>,
    pub(crate) id: usize,
}

impl Counted {
    pub(crate) fn new(census: &Arc<Census>, id: usize) -> Self {
        census.made.fetch_add(1, SeqCst);
        Self {
            census: Arc::clone(census),
            id,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.census.dropped.fetch_add(1, SeqCst);
    }
}
