//! Go's `context` for threads: trees of cancellation with deadlines, which every gosync
//! `_ctx` wait listens to.
//!
//! A [`Context`] is a read-only view of "should this work stop?": it is done when its
//! [`Canceler`] is called, when its deadline passes, or when its parent is done. Every blocking
//! operation in gosync has an `op_ctx(&Context)` variant that gives up with the context's
//! [`ContextError`] as soon as the context is done; the thread is woken by the cancellation
//! itself, never by polling.
//!
//! # From Go
//!
//! | Go | Rust here |
//! | --- | --- |
//! | `context.Background()`, `context.TODO()` | [`Context::background()`], `Context::default()` |
//! | `ctx, cancel := context.WithCancel(parent)` | `let (ctx, cancel) = parent.with_cancel();` |
//! | `context.WithTimeout(parent, d)` | [`parent.with_timeout(d)`](Context::with_timeout) |
//! | `context.WithDeadline(parent, t)` | [`parent.with_deadline(t)`](Context::with_deadline) |
//! | `cancel()` | [`cancel.cancel()`](Canceler::cancel) |
//! | `<-ctx.Done()` | [`ctx.wait()`](Context::wait), [`ctx.wait_for(d)`](Context::wait_for), [`ctx.wait_until(t)`](Context::wait_until) |
//! | `select { case <-ctx.Done(): … default: … }` | [`ctx.is_done()`](Context::is_done) |
//! | `ctx.Err()` | [`ctx.err()`](Context::err): `None`, `Some(Canceled)`, `Some(DeadlineExceeded)` |
//! | `ctx.Deadline()` | [`ctx.deadline()`](Context::deadline) |
//! | `context.Canceled`, `context.DeadlineExceeded` | [`ContextError::Canceled`], [`ContextError::DeadlineExceeded`] |
//!
//! # Differences from Go
//!
//! - **No values.** `context.WithValue` is not here: pass data as arguments (or in your own
//!   struct next to the context).
//! - **No `Done()` channel.** Threads wait with [`Context::wait`], [`Context::wait_for`] or
//!   [`Context::wait_until`], or poll [`Context::is_done`]; gosync's own waits take a
//!   `&Context` and wake when it is done.
//! - **Dropping a [`Canceler`] does not cancel**, exactly as not calling Go's `CancelFunc` does
//!   not (Go's `vet` warns about it; here the type is `#[must_use]`). Unlike Go, forgetting to
//!   cancel leaks nothing: once every handle of a child (its `Context` clones and `Canceler`s)
//!   is dropped and its own children have gone the same way, the child leaves its parent.
//!   Cancelling a child (or its deadline passing, once someone looks) takes it out of its
//!   parent at once, as in Go, even while its handles live on.
//! - **No timer per context.** A deadline is compared with the clock when someone looks, and a
//!   waiter sleeps no later than the deadline, so a context with a deadline costs nothing while
//!   nobody waits on it. The answer is the one Go's timers give: a child whose deadline is its
//!   parent's (a `with_cancel` child, or one whose own deadline is the same or later) has no
//!   timer of its own in Go, so it shares the parent's fate. Looking at the child after the
//!   deadline records it for the parent that owns it (and so for the parent's whole tree),
//!   unless the parent was cancelled before the deadline: then the child reports `Canceled`,
//!   also while that cancellation is still on its way down a large tree.
//! - No `WithCancelCause`, `AfterFunc` or `WithoutCancel`.
//!
//! # Examples
//!
//! A worker that stops when its context is cancelled from another thread:
//!
//! ```
//! use gosync_context::{Context, ContextError};
//! use std::time::Duration;
//!
//! let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(60));
//! let worker = std::thread::spawn(move || {
//!     let mut rounds = 0u64;
//!     while !ctx.is_done() {
//!         rounds += 1; // one unit of work
//!         if rounds == 1_000 {
//!             ctx.wait(); // nothing left to do: wait to be told to stop
//!         }
//!     }
//!     ctx.err()
//! });
//! cancel.cancel();
//! assert_eq!(worker.join().unwrap(), Some(ContextError::Canceled));
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Notes about memory ordering
//
// A node's `state` changes once, from `ACTIVE` to a done state, and only while the node's
// `lists` lock is held, together with taking its children and wakers. Everything else about the
// tree (children lists, wakers, a child's `slot` in its parent's list) is read and written only
// under the lock that owns it, which orders it.
//
// The one access outside a lock is the fast-path load of `state` in `is_done`/`err`: it is
// `Acquire` and pairs with the `Release` store in `Node::finish`, so a thread that sees a
// context done also sees everything the cancelling thread did before `cancel()` (as Go's
// `close(done)` happens before a receive that sees it closed).

use std::fmt;
use std::mem;
use std::time::{Duration, Instant};

use gosync_park::sync::{Arc, AtomicU8, AtomicUsize, BookkeepingLock, Ordering};
use gosync_park::{
    deadline_passed, earliest_deadline, park, Cancellation, ParkOptions, ParkResult, Waker,
};

/// Why a [`Context`] is done: Go's `context.Canceled` and `context.DeadlineExceeded`.
///
/// Its `Display` is Go's text: `context canceled` and `context deadline exceeded`. (The type
/// lives in gosync-park, whose cancellation sources report it, so that every `_ctx` wait maps a
/// cancelled wait to its error the same way; this is the same type.)
///
/// # Examples
///
/// ```
/// use gosync_context::{Context, ContextError};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel();
/// let err = ctx.err().unwrap();
/// assert_eq!(err, ContextError::Canceled);
/// assert_eq!(err.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// ```
pub use gosync_park::ContextError;

/// `Node::state`: not done yet (a passed deadline is still seen through `Node::deadline`).
const ACTIVE: u8 = 0;
/// `Node::state`: cancelled by a `Canceler` or by a parent that was cancelled.
const CANCELED: u8 = 1;
/// `Node::state`: cancelled after its own deadline had passed, or by a parent (or an ancestor
/// whose deadline it shares) that recorded `DeadlineExceeded`.
const DEADLINE_EXCEEDED: u8 = 2;

/// `Node::slot`: the node is not in its parent's children list.
const NO_SLOT: usize = usize::MAX;

/// The key that waits on the background context park on (nothing ever wakes it).
static BACKGROUND_KEY: u8 = 0;

/// The `Node::state` that records `err`.
#[inline]
fn state_of(err: ContextError) -> u8 {
    match err {
        ContextError::Canceled => CANCELED,
        ContextError::DeadlineExceeded => DEADLINE_EXCEEDED,
    }
}

/// The error a done `Node::state` records.
#[inline]
fn error_of(state: u8) -> ContextError {
    debug_assert_ne!(state, ACTIVE, "an active node has no error");
    if state == CANCELED {
        ContextError::Canceled
    } else {
        ContextError::DeadlineExceeded
    }
}

/// One cancellable context, shared by its handles, its parent's children list and the
/// cancellations walking the tree.
struct Node {
    /// `ACTIVE`, `CANCELED` or `DEADLINE_EXCEEDED`; leaves `ACTIVE` once, under `lists`.
    state: AtomicU8,
    /// The earlier of its own deadline and its parent's.
    deadline: Option<Instant>,
    /// `deadline` is this node's own, earlier than its parent's. A node whose deadline is its
    /// parent's (a `with_cancel` child, or one whose own deadline is the same or later; Go
    /// starts no timer when it is later) never expires on its own account: it shares its
    /// parent's fate, as in Go, where only the parent's timer fires and its cancellation walks
    /// down (see `expire`).
    owns_deadline: bool,
    /// Kept so that a child whose handles are all gone can leave its parent's list, and so that
    /// the parent (and the ancestors that would cancel it) live as long as the child.
    parent: Option<Arc<Node>>,
    /// Its index in `parent`'s children list, or `NO_SLOT`; read and written only under the
    /// parent's `lists` lock.
    slot: AtomicUsize,
    lists: BookkeepingLock<Lists>,
}

/// What a cancellation must reach (children and wakers are taken when the node is cancelled),
/// guarded by `Node::lists`.
#[derive(Default)]
struct Lists {
    /// Children listed while this node is active, until they are cancelled or their last
    /// handle (and child) goes; dense: each knows its index (`Node::slot`).
    children: Vec<Arc<Node>>,
    /// Threads parked with this context as their cancellation source.
    wakers: Vec<Waker>,
    /// Every handle (`Context` clone, `Canceler`) of this node is gone: nobody can add a child
    /// any more, and once `children` is empty nothing needs the node to be reachable.
    orphaned: bool,
    /// The children the node had when it was cancelled, from then until the cancellation that
    /// took them has made every one of their descendants done (`None` for a node that had
    /// none). Another cancellation reaching the node meanwhile walks them too, so that it also
    /// returns only once the whole tree below is done, as Go's `cancel` (which waits for the
    /// child's lock, held while the child cancels its own children). Holding them here is a
    /// reference cycle (each child holds its parent) that `Node::settle` breaks.
    walking: Option<Arc<Vec<Arc<Node>>>>,
}

/// What a cancellation finds when it reaches a node (`Node::finish`).
enum Reached {
    /// It made the node done with this error: it walks the children (if any: they are also in
    /// `Lists::walking`), then settles the node.
    Made(ContextError, Option<Arc<Vec<Arc<Node>>>>),
    /// The node was done already, and the walk of these children may not be over: it walks
    /// them too, with the node's error.
    Walking(ContextError, Arc<Vec<Arc<Node>>>),
    /// The node and every descendant are done already.
    Settled,
}

/// A node whose children a cancellation is walking.
struct Frame {
    /// `None` for the node the cancellation started from (borrowed, not counted).
    node: Option<Arc<Node>>,
    children: Arc<Vec<Arc<Node>>>,
    /// The next child to reach.
    next: usize,
    /// The node's error, which its children take.
    err: ContextError,
    /// This cancellation made the node done, and settles it when the walk is over.
    made: bool,
}

impl Lists {
    /// Takes the child at `slot` out of the list, keeping the moved child's `slot` right, and
    /// gives memory back after a burst of children. The caller holds this list's lock.
    fn remove_child(&mut self, slot: usize) -> Arc<Node> {
        let children = &mut self.children;
        let removed = children.swap_remove(slot);
        // Relaxed: `slot` is used only under this list's lock, which the caller holds. A child
        // taken out by its own cancellation keeps its handles, whose last drop must find it
        // unlisted.
        removed.slot.store(NO_SLOT, Ordering::Relaxed);
        if let Some(moved) = children.get(slot) {
            // Relaxed: `slot` is used only under this list's lock, which the caller holds.
            moved.slot.store(slot, Ordering::Relaxed);
        }
        if children.capacity() > 16 && children.len() < children.capacity() / 4 {
            children.shrink_to(children.len() * 2);
        }
        removed
    }
}

/// Takes `node` out of its parent's list, when nothing needs it there any more: it is done
/// (cancelled, its own children taken), or it has no handles and no listed children. When that
/// leaves the parent without handles or children, goes on up the tree.
///
/// A node stays listed while it has children even after its last handle is gone: a
/// cancellation of an ancestor must still reach those children through it.
fn detach(node: &Node) {
    let mut child = node;
    // Every `parent` below is kept alive by `node`, which holds its parent, which holds its own.
    while let Some(parent) = child.parent.as_deref() {
        let (removed, cascade) = {
            let mut lists = parent.lists.lock();
            // Relaxed: `state` changes only under this lock, which we hold.
            if parent.state.load(Ordering::Relaxed) != ACTIVE {
                return; // `finish` took the list; the child went with it.
            }
            // Relaxed: `slot` is used only under the parent's lock, which we hold.
            let slot = child.slot.load(Ordering::Relaxed);
            if slot == NO_SLOT {
                // Made when the parent's deadline had passed (never listed), or taken out
                // already by its own cancellation.
                return;
            }
            let removed = lists.remove_child(slot);
            debug_assert!(std::ptr::eq(&*removed, child), "a child's slot is stale");
            (removed, lists.orphaned && lists.children.is_empty())
        };
        // Never the last reference (`child` is alive), but dropped outside the lock anyway.
        drop(removed);
        if !cascade {
            return;
        }
        child = parent;
    }
}

impl Node {
    /// Why the node is done, if it is; the fast path under `is_done` and `err`.
    #[inline]
    fn err(&self) -> Option<ContextError> {
        // Acquire: pairs with the Release store in `finish` (see the notes at the top).
        match self.state.load(Ordering::Acquire) {
            ACTIVE => match self.deadline {
                Some(deadline) if deadline_passed(deadline) => Some(self.expire()),
                _ => None,
            },
            done => Some(error_of(done)),
        }
    }

    /// The deadline has passed and nobody has recorded it yet: records it as Go's timer would,
    /// and answers what the state then says. Answering from the clock alone is not enough: a
    /// `cancel` that read the clock just before the deadline may still be on its way to store
    /// `Canceled`, and every later `err` would then contradict this one.
    ///
    /// The timer is the one of the node that owns the deadline: this one, or the nearest
    /// ancestor whose deadline it inherited. That node is cancelled with `DeadlineExceeded`,
    /// unless a node on the way up to it is done already: then a cancellation came first and is
    /// on its way down, and the node below it on the path (active, sharing its fate) is
    /// cancelled with its error, as that walk would when it got there. Either cancellation
    /// walks down to this node, so every node on the path takes the same error (cancelling this
    /// node alone would leave the ones between free to take another). Another thread's walk may
    /// get there first, and this one then returns at once: the search starts again from this
    /// node, and ends with it done.
    #[cold]
    fn expire(&self) -> ContextError {
        loop {
            let mut node = self;
            // The last node the search passed: active, sharing `node`'s fate.
            let mut below = self;
            let (target, err) = loop {
                // Acquire: as in `err`.
                match node.state.load(Ordering::Acquire) {
                    ACTIVE if node.owns_deadline => break (node, ContextError::DeadlineExceeded),
                    ACTIVE => {
                        below = node;
                        node = node
                            .parent
                            .as_deref()
                            .expect("an inherited deadline comes from a parent");
                    }
                    done if std::ptr::eq(node, self) => return error_of(done),
                    done => break (below, error_of(done)),
                }
            };
            // Not joining a cancellation already under way (see `cancel`): many waiters may see
            // the deadline pass at once, and each would walk the tree again.
            target.cancel(err, false);
        }
    }

    /// Whether the node is done or past its deadline, without recording anything (a passed
    /// deadline makes the node done, whatever error it then records): for a caller that must
    /// not walk the tree, as one holding its `lists` lock (which `expire` would take) or the
    /// park layer's `validate`, under its queue lock.
    #[inline]
    fn is_done_or_expired(&self) -> bool {
        // Acquire: as in `err`; for a caller holding the `lists` lock, which orders the state
        // already, more than it needs, so that one check serves both callers.
        self.state.load(Ordering::Acquire) != ACTIVE || self.deadline.is_some_and(deadline_passed)
    }

    /// Lists `child` as a child, or, when this node is already done (or past its deadline),
    /// makes `child` done with the same error. `child` is not shared with anyone yet.
    fn adopt(&self, child: &Arc<Node>) {
        {
            let mut lists = self.lists.lock();
            if !self.is_done_or_expired() {
                // Relaxed: under this node's lock, the only place `slot` is used.
                child.slot.store(lists.children.len(), Ordering::Relaxed);
                lists.children.push(Arc::clone(child));
                return;
            }
        }
        // Outside the lock: a deadline seen passed is recorded first (`expire` takes locks).
        let err = self.err().expect("a node past its deadline is done");
        // Relaxed: `child` is not shared yet; it is published with the handles made from it.
        child.state.store(state_of(err), Ordering::Relaxed);
    }

    /// Marks this node done (with `DeadlineExceeded` if its own deadline had passed already,
    /// as the deadline came first; otherwise with `reason`, which for a deadline inherited from
    /// the parent is the parent's error: see `owns_deadline`), wakes its waiters, and returns
    /// the error and the children to cancel in turn; or says how far another cancellation got.
    fn finish(&self, reason: ContextError) -> Reached {
        let mut lists = self.lists.lock();
        // Relaxed: `state` changes only under this lock, which we hold.
        let state = self.state.load(Ordering::Relaxed);
        if state != ACTIVE {
            return match &lists.walking {
                Some(children) => Reached::Walking(error_of(state), Arc::clone(children)),
                None => Reached::Settled,
            };
        }
        let err = match self.deadline {
            Some(deadline) if self.owns_deadline && deadline_passed(deadline) => {
                ContextError::DeadlineExceeded
            }
            _ => reason,
        };
        // Release: pairs with the Acquire load in `err` (see the notes at the top).
        self.state.store(state_of(err), Ordering::Release);
        let children = mem::take(&mut lists.children);
        let children: Option<Arc<Vec<Arc<Node>>>> =
            (!children.is_empty()).then(|| Arc::new(children));
        lists.walking = children.clone();
        let wakers = mem::take(&mut lists.wakers);
        drop(lists);
        for waker in &wakers {
            waker.wake();
        }
        Reached::Made(err, children)
    }

    /// Ends the walk of the children that `finish` took: every descendant is done now.
    fn settle(&self) {
        let children = self.lists.lock().walking.take();
        drop(children); // outside the lock, as every drop of shared nodes
    }

    /// Cancels this node and every descendant not done yet, each with its parent's error, and
    /// returns once all of them are done, also when another cancellation got to some of them
    /// first and is still on its way down (see `Lists::walking`); with `join` false, returns
    /// at once if another cancellation got to this node first. A depth-first walk with an
    /// explicit stack: no recursion, however deep the tree. Then, if this call made the node
    /// done, takes it out of its parent's list, as Go's `cancel` does, so that a cancelled
    /// context kept by its handles holds no memory in its parent. Descendants need no such
    /// step: they left with the lists `finish` took.
    #[cold]
    fn cancel(&self, reason: ContextError, join: bool) {
        let reached = self.finish(reason);
        let made = matches!(reached, Reached::Made(..));
        let mut stack: Vec<Frame> = Vec::new();
        if made || join {
            stack.extend(reached.into_frame(None));
        }
        while let Some(frame) = stack.last_mut() {
            let Some(child) = frame.children.get(frame.next) else {
                let frame = stack.pop().expect("the frame just looked at");
                if frame.made {
                    frame.node.as_deref().unwrap_or(self).settle();
                }
                continue;
            };
            frame.next += 1;
            let child = Arc::clone(child);
            let reached = child.finish(frame.err);
            stack.extend(reached.into_frame(Some(child)));
        }
        if made {
            detach(self);
        }
    }
}

impl Reached {
    /// The frame that walks the children this says are left to walk, for `node` (`None`: the
    /// node the cancellation started from); `None` when there are none.
    fn into_frame(self, node: Option<Arc<Node>>) -> Option<Frame> {
        let (children, err, made) = match self {
            Reached::Made(err, Some(children)) => (children, err, true),
            Reached::Walking(err, children) => (children, err, false),
            Reached::Made(_, None) | Reached::Settled => return None,
        };
        Some(Frame {
            node,
            children,
            next: 0,
            err,
            made,
        })
    }
}

impl Drop for Node {
    /// Drops the chain of parents that this node held last iteratively, so that a long chain of
    /// contexts whose handles are gone does not recurse once per level.
    fn drop(&mut self) {
        let mut parent = self.parent.take();
        while let Some(node) = parent {
            parent = match Arc::try_unwrap(node) {
                Ok(mut node) => node.parent.take(),
                Err(_) => None, // someone else still holds it
            };
        }
    }
}

/// What every `Context` clone and `Canceler` of one node share; when the last goes, the node
/// leaves its parent's list (at once, or when its last child leaves; see [`detach`]).
struct Handle {
    node: Arc<Node>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        {
            let mut lists = self.node.lists.lock();
            lists.orphaned = true;
            // Relaxed: `state` changes only under this lock, which we hold.
            if self.node.state.load(Ordering::Relaxed) != ACTIVE {
                // Not listed any more: a parent's cancellation took the whole list, or the
                // node was born done (`adopt`) and never listed, or its own cancellation took
                // it out. That last one runs through a handle (`Canceler::cancel`, `err` on a
                // `Context`), so it has returned, detached, before the last handle goes.
                return;
            }
            if !lists.children.is_empty() {
                return; // the last child to leave detaches this node (see `detach`).
            }
        }
        detach(&self.node);
    }
}

/// Go's `context.Context`: a signal that work should stop, with an optional deadline.
///
/// A context is done when its [`Canceler`] is called, when its deadline passes, or when its
/// parent is done; [`err`](Self::err) then says why. Contexts form a tree: cancelling a context
/// cancels every context made from it, recursively, and never its parent. A child's deadline is
/// the earlier of its own and its parent's.
///
/// Cloning is cheap (a reference count) and every clone is the same context. The background
/// context allocates nothing.
///
/// # Differences from Go
///
/// There is no `Done()` channel: use [`wait`](Self::wait), [`wait_for`](Self::wait_for) or
/// [`is_done`](Self::is_done), or pass the context to a gosync `_ctx` operation, which wakes as
/// soon as it is done. There are no values (`WithValue`). See the [crate docs](crate) for the
/// whole mapping.
///
/// # Examples
///
/// ```
/// use gosync_context::{Context, ContextError};
///
/// let (parent, cancel_parent) = Context::background().with_cancel();
/// let (child, _cancel_child) = parent.with_cancel();
/// assert!(!child.is_done());
///
/// cancel_parent.cancel();
/// assert!(parent.is_done());
/// assert_eq!(child.err(), Some(ContextError::Canceled));
/// ```
#[derive(Clone, Default)]
pub struct Context {
    /// `None` for the background context.
    handle: Option<Arc<Handle>>,
}

impl Context {
    /// The root context: never cancelled, no deadline. Go's `context.Background()` (and
    /// `context.TODO()`).
    ///
    /// It allocates nothing; `Context::default()` is the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    ///
    /// const ROOT: Context = Context::background();
    /// assert!(!ROOT.is_done());
    /// assert_eq!(ROOT.err(), None);
    /// assert_eq!(ROOT.deadline(), None);
    /// ```
    #[inline]
    #[must_use]
    pub const fn background() -> Context {
        Context { handle: None }
    }

    /// A child that is done when `cancel` is called on the returned [`Canceler`] or when this
    /// context is done. Go's `context.WithCancel(parent)`.
    ///
    /// The child reports this context's deadline. If this context is done already, so is the
    /// child, with the same error.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    ///
    /// let root = Context::background();
    /// let (ctx, cancel) = root.with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled));
    /// assert!(!root.is_done()); // a child never cancels its parent
    /// ```
    #[must_use = "the context is done only through the Canceler or an ancestor; use both"]
    pub fn with_cancel(&self) -> (Context, Canceler) {
        self.child(None)
    }

    /// A child that is also done `timeout` from now, with
    /// [`ContextError::DeadlineExceeded`]. Go's `context.WithTimeout(parent, timeout)`.
    ///
    /// A timeout too long to represent as an [`Instant`] means no deadline of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
    /// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    ///
    /// let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(60));
    /// assert!(ctx.deadline().is_some());
    /// cancel.cancel(); // release it early, as Go's `defer cancel()`
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled));
    /// ```
    #[must_use = "the context is done only through the Canceler, the deadline or an ancestor"]
    pub fn with_timeout(&self, timeout: Duration) -> (Context, Canceler) {
        self.child(gosync_park::deadline_after(timeout))
    }

    /// A child that is also done at `deadline`, with [`ContextError::DeadlineExceeded`]. Go's
    /// `context.WithDeadline(parent, deadline)`.
    ///
    /// The child's deadline is the earlier of `deadline` and this context's.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    /// use std::time::{Duration, Instant};
    ///
    /// let soon = Instant::now() + Duration::from_secs(10);
    /// let (parent, _cancel_parent) = Context::background().with_deadline(soon);
    /// let (child, _cancel_child) = parent.with_deadline(soon + Duration::from_secs(50));
    /// assert_eq!(child.deadline(), Some(soon)); // the parent's is earlier
    /// ```
    #[must_use = "the context is done only through the Canceler, the deadline or an ancestor"]
    pub fn with_deadline(&self, deadline: Instant) -> (Context, Canceler) {
        self.child(Some(deadline))
    }

    fn child(&self, deadline: Option<Instant>) -> (Context, Canceler) {
        let parent = self.node();
        let inherited = self.deadline();
        let deadline = earliest_deadline(deadline, inherited);
        let node = Arc::new(Node {
            state: AtomicU8::new(ACTIVE),
            deadline,
            owns_deadline: deadline.is_some() && deadline != inherited,
            parent: parent.cloned(),
            slot: AtomicUsize::new(NO_SLOT),
            lists: BookkeepingLock::new(Lists::default()),
        });
        if let Some(parent) = parent {
            parent.adopt(&node);
        }
        let handle = Arc::new(Handle { node });
        let ctx = Context {
            handle: Some(Arc::clone(&handle)),
        };
        (ctx, Canceler { handle })
    }

    #[inline]
    fn node(&self) -> Option<&Arc<Node>> {
        self.handle.as_ref().map(|handle| &handle.node)
    }

    /// Whether the context is done: cancelled, or past its deadline. Go's
    /// `select { case <-ctx.Done(): … default: … }`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert!(!ctx.is_done());
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    #[inline]
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// Why the context is done, or `None` while it is not. Go's `ctx.Err()`.
    ///
    /// The first reason wins: a context whose deadline had passed before it was cancelled
    /// reports [`ContextError::DeadlineExceeded`].
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use std::time::Instant;
    ///
    /// let (ctx, cancel) = Context::background().with_deadline(Instant::now());
    /// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    /// cancel.cancel(); // too late: the deadline came first
    /// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    /// ```
    #[inline]
    #[must_use]
    pub fn err(&self) -> Option<ContextError> {
        self.node().and_then(|node| node.err())
    }

    /// When the context will be done by itself, if ever: the earliest deadline on its path to
    /// the root. Go's `ctx.Deadline()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    /// use std::time::{Duration, Instant};
    ///
    /// assert_eq!(Context::background().deadline(), None);
    /// let at = Instant::now() + Duration::from_secs(5);
    /// let (ctx, _cancel) = Context::background().with_deadline(at);
    /// let (child, _cancel_child) = ctx.with_cancel();
    /// assert_eq!(child.deadline(), Some(at));
    /// ```
    #[inline]
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.node().and_then(|node| node.deadline)
    }

    /// Blocks until the context is done. Go's `<-ctx.Done()`.
    ///
    /// The thread sleeps and is woken by the cancellation (or at the deadline); it does not
    /// poll. On the background context, which is never done, it blocks forever (as a receive
    /// from Go's nil `Done()` channel).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let waiter = std::thread::spawn(move || {
    ///     ctx.wait();
    ///     ctx.err()
    /// });
    /// cancel.cancel();
    /// assert_eq!(waiter.join().unwrap(), Some(ContextError::Canceled));
    /// ```
    pub fn wait(&self) {
        let done = self.wait_done(None);
        debug_assert!(done, "an untimed wait ends only when the context is done");
    }

    /// Blocks until the context is done or `timeout` has passed; returns whether it is done.
    ///
    /// A zero timeout only checks. A timeout too large to represent waits as
    /// [`wait`](Self::wait) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    /// use std::time::Duration;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert!(!ctx.wait_for(Duration::from_millis(1)));
    /// cancel.cancel();
    /// assert!(ctx.wait_for(Duration::from_secs(10)));
    /// ```
    #[must_use = "the result says whether the context is done"]
    pub fn wait_for(&self, timeout: Duration) -> bool {
        match gosync_park::deadline_after(timeout) {
            Some(deadline) => self.wait_until(deadline),
            None => {
                self.wait();
                true
            }
        }
    }

    /// Blocks until the context is done or `deadline` has passed; returns whether it is done.
    ///
    /// A deadline already past only checks. The thread is woken by the cancellation itself, or
    /// at the earlier of `deadline` and the context's own deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    /// use std::time::{Duration, Instant};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert!(!ctx.wait_until(Instant::now()));
    /// let canceller = std::thread::spawn(move || cancel.cancel());
    /// assert!(ctx.wait_until(Instant::now() + Duration::from_secs(60)));
    /// canceller.join().unwrap();
    /// ```
    #[must_use = "the result says whether the context is done"]
    pub fn wait_until(&self, deadline: Instant) -> bool {
        self.wait_done(Some(deadline))
    }

    /// Waits until the context is done (`true`) or `deadline` passes (`false`).
    fn wait_done(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_done() {
                return true;
            }
            if deadline.is_some_and(deadline_passed) {
                return false;
            }
            let options = ParkOptions {
                deadline,
                cancel: Some(self),
                ..ParkOptions::default()
            };
            // Not `is_done`, which may record a passed deadline by walking the tree: the
            // validate runs under the park layer's queue lock. The loop records it.
            let active = || !self.node().is_some_and(|node| node.is_done_or_expired());
            match park(self.key(), options, active, || {}, |_, _| {}) {
                // The park layer saw the context done, by cancellation or at its deadline.
                ParkResult::Cancelled => return true,
                ParkResult::TimedOut => return self.is_done(),
                // Nothing unparks this key: only a context that became done meanwhile.
                ParkResult::Invalid | ParkResult::Unparked(_) => {}
            }
        }
    }

    /// The park key of waits on this context. Nothing unparks it: waiters are woken through
    /// their registered [`Waker`]s.
    #[inline]
    fn key(&self) -> usize {
        match self.node() {
            Some(node) => Arc::as_ptr(node) as usize,
            None => &BACKGROUND_KEY as *const u8 as usize,
        }
    }

    /// The number of children listed in this context's node: a test helper (unit tests and
    /// loom models), not part of the API.
    #[cfg(any(test, gosync_loom))]
    #[doc(hidden)]
    #[must_use]
    pub fn listed_children(&self) -> usize {
        self.node()
            .map_or(0, |node| node.lists.lock().children.len())
    }
}

impl fmt::Debug for Context {
    /// Shows why it is done (`err`) and how long until its deadline (`time_left`, zero once
    /// passed; `None` without a deadline).
    ///
    /// ```
    /// use gosync_context::Context;
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    /// let shown = format!("{ctx:?}");
    /// assert!(shown.starts_with("Context { err: None, time_left: Some("), "{shown}");
    /// assert_eq!(
    ///     format!("{:?}", Context::background()),
    ///     "Context { err: None, time_left: None }"
    /// );
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time_left = self
            .deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        f.debug_struct("Context")
            .field("err", &self.err())
            .field("time_left", &time_left)
            .finish()
    }
}

/// A context is a cancellation source for the park layer: a thread parked with
/// `cancel: Some(&ctx)` wakes as soon as `ctx` is done (cancelled, or at its deadline).
impl Cancellation for Context {
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.is_done()
    }

    #[inline]
    fn err(&self) -> Option<ContextError> {
        Context::err(self)
    }

    #[inline]
    fn deadline(&self) -> Option<Instant> {
        Context::deadline(self)
    }

    fn register(&self, waker: Waker) -> bool {
        let Some(node) = self.node() else {
            return true; // never cancelled: nothing will ever need waking.
        };
        let mut lists = node.lists.lock();
        if node.is_done_or_expired() {
            return false;
        }
        lists.wakers.push(waker);
        true
    }

    fn unregister(&self, waker_id: usize) {
        if let Some(node) = self.node() {
            let mut lists = node.lists.lock();
            if let Some(index) = lists.wakers.iter().position(|w| w.id() == waker_id) {
                lists.wakers.swap_remove(index);
            }
        }
    }
}

/// Cancels the [`Context`] it was made with: Go's `context.CancelFunc`.
///
/// [`cancel`](Self::cancel) makes the context and all its descendants done with
/// [`ContextError::Canceled`] (or `DeadlineExceeded` where the deadline had passed first) and
/// wakes everyone waiting on them. Cancelling again does nothing.
///
/// # Differences from Go
///
/// Dropping a `Canceler` does not cancel, as not calling Go's `CancelFunc` does not (Go's `vet`
/// warns about that; here the type is `#[must_use]`). Unlike Go, it leaks nothing either: when
/// the context's last handle goes (and its children have gone), it leaves its parent. Call
/// `cancel` when the work is over, so that anything still waiting on the context (or its
/// children) stops; as in Go, the cancelled context then leaves its parent at once, even while
/// its handles are kept.
///
/// # Examples
///
/// ```
/// use gosync_context::Context;
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let also = cancel.clone();
/// also.cancel();
/// cancel.cancel(); // idempotent
/// assert!(ctx.is_done());
/// ```
#[derive(Clone)]
#[must_use = "dropping a Canceler does not cancel its context; call cancel() when the work is done"]
pub struct Canceler {
    handle: Arc<Handle>,
}

impl Canceler {
    /// Cancels the context and its descendants, and wakes every thread waiting on them.
    /// Idempotent: only the first call (or deadline) decides the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (grandchild, _c) = ctx.with_cancel().0.with_cancel();
    /// cancel.cancel();
    /// assert_eq!(grandchild.err(), Some(ContextError::Canceled));
    /// ```
    #[inline]
    pub fn cancel(&self) {
        let node = &self.handle.node;
        // A deadline that has passed came first: recorded as such (`err` does, also for one
        // inherited from an ancestor, whose timer would have fired), and the cancel below then
        // only waits for the walk to end.
        let _ = node.err();
        node.cancel(ContextError::Canceled, true);
    }
}

impl fmt::Debug for Canceler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canceler")
            .field("err", &self.handle.node.err())
            .finish()
    }
}

static_assertions::assert_impl_all!(Context: Send, Sync, Clone, Default, fmt::Debug);
static_assertions::assert_impl_all!(Canceler: Send, Sync, Clone, fmt::Debug);
static_assertions::assert_impl_all!(
    ContextError: Send,
    Sync,
    Copy,
    Eq,
    std::hash::Hash,
    std::error::Error,
    fmt::Display
);

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use super::*;

    #[test]
    fn dropped_children_leave_the_parent() {
        let (parent, _cancel) = Context::background().with_cancel();
        let rounds = if cfg!(miri) { 200 } else { 100_000 };
        let mut kept = Vec::new();
        for i in 0..rounds {
            let (child, cancel) = parent.with_timeout(Duration::from_secs(3600));
            let (grandchild, _c) = child.with_cancel();
            if i % 1000 == 0 {
                kept.push((child, cancel));
            }
            drop(grandchild);
        }
        assert_eq!(parent.listed_children(), kept.len());
        assert!(kept.iter().all(|(child, _)| child.listed_children() == 0));
        kept.clear();
        assert_eq!(parent.listed_children(), 0);
        let capacity = parent.node().unwrap().lists.lock().children.capacity();
        assert!(capacity <= 32, "capacity {capacity} was not given back");
    }

    #[test]
    fn slots_stay_right_after_out_of_order_drops() {
        let (parent, _cancel) = Context::background().with_cancel();
        let mut children: Vec<_> = (0..50).map(|_| parent.with_cancel()).collect();
        for index in [3, 0, 40, 7, 7, 1] {
            drop(children.remove(index.min(children.len() - 1)));
        }
        assert_eq!(parent.listed_children(), children.len());
        // Every remaining child is still reachable from the parent.
        let node = parent.node().unwrap();
        for (child, _) in &children {
            let lists = node.lists.lock();
            let slot = child.node().unwrap().slot.load(Ordering::Relaxed);
            assert!(Arc::ptr_eq(&lists.children[slot], child.node().unwrap()));
        }
    }

    #[test]
    fn a_cancelled_parent_holds_no_children() {
        let (parent, cancel) = Context::background().with_cancel();
        let kept: Vec<_> = (0..10).map(|_| parent.with_cancel()).collect();
        cancel.cancel();
        assert_eq!(parent.listed_children(), 0);
        drop(kept); // leaving a cancelled parent touches nothing
        let (late, _c) = parent.with_cancel();
        assert_eq!(parent.listed_children(), 0);
        assert_eq!(late.err(), Some(ContextError::Canceled));
    }

    #[test]
    fn a_cancelled_child_leaves_its_parent_at_once() {
        let (parent, _cancel) = Context::background().with_cancel();
        let children: Vec<_> = (0..10).map(|_| parent.with_cancel()).collect();
        let (grandchild, _c) = children[4].0.with_cancel();
        for (child, cancel) in children.iter().step_by(2) {
            cancel.cancel();
            assert_eq!(child.listed_children(), 0);
        }
        assert_eq!(parent.listed_children(), 5);
        assert_eq!(grandchild.err(), Some(ContextError::Canceled));
        // The others stay reachable at their slots, and cancelling again changes nothing.
        let node = parent.node().unwrap();
        for (child, _) in children.iter().skip(1).step_by(2) {
            let lists = node.lists.lock();
            let slot = child.node().unwrap().slot.load(Ordering::Relaxed);
            assert!(Arc::ptr_eq(&lists.children[slot], child.node().unwrap()));
        }
        children[0].1.cancel();
        assert_eq!(parent.listed_children(), 5);
        drop(children);
        assert_eq!(parent.listed_children(), 0);
        assert!(!parent.is_done());
    }

    #[test]
    fn a_child_past_its_deadline_leaves_when_seen() {
        let (parent, _cancel) = Context::background().with_cancel();
        let (child, _c) = parent.with_deadline(Instant::now());
        let (live, _live_cancel) = parent.with_timeout(Duration::from_secs(3600));
        assert_eq!(parent.listed_children(), 2);
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(parent.listed_children(), 1);
        assert_eq!(live.err(), None);
    }

    /// A node made by hand, in `state` and listed in `parent`'s children: the trees below need
    /// a deadline that has passed after a cancellation began, which the API cannot make without
    /// waiting for the clock.
    fn node_by_hand(
        parent: Option<&Arc<Node>>,
        state: u8,
        deadline: Instant,
        owns_deadline: bool,
    ) -> Context {
        let node = Arc::new(Node {
            state: AtomicU8::new(state),
            deadline: Some(deadline),
            owns_deadline,
            parent: parent.cloned(),
            slot: AtomicUsize::new(NO_SLOT),
            lists: BookkeepingLock::new(Lists::default()),
        });
        if let Some(parent) = parent {
            let mut lists = parent.lists.lock();
            node.slot.store(lists.children.len(), Ordering::Relaxed);
            lists.children.push(Arc::clone(&node));
        }
        Context {
            handle: Some(Arc::new(Handle { node })),
        }
    }

    /// A parent done in `state` (for `CANCELED`: cancelled before its deadline, which has
    /// passed since), with a child and a grandchild that inherit its deadline and that its
    /// cancellation has not reached yet: the state `finish` leaves for its walk (the children
    /// moved to `walking`).
    fn done_mid_walk(state: u8) -> [Context; 3] {
        let past = Instant::now();
        let parent = node_by_hand(None, state, past, true);
        let child = node_by_hand(parent.node(), ACTIVE, past, false);
        let grandchild = node_by_hand(child.node(), ACTIVE, past, false);
        let mut lists = parent.node().unwrap().lists.lock();
        let children = mem::take(&mut lists.children);
        lists.walking = Some(Arc::new(children));
        drop(lists);
        [parent, child, grandchild]
    }

    #[test]
    fn a_cancellation_begun_before_an_inherited_deadline_decides_the_error() {
        let [parent, child, grandchild] = done_mid_walk(CANCELED);
        // Seen past the deadline before the walk got there: the walk's error, not the clock's.
        assert_eq!(grandchild.err(), Some(ContextError::Canceled));
        // The walk reaches the child after the deadline (a second cancel joins it).
        let parent_node = parent.node().unwrap();
        parent_node.cancel(ContextError::Canceled, true);
        assert_eq!(child.err(), Some(ContextError::Canceled));
        parent_node.settle(); // the walk begun by hand ends: the cycle through `walking` goes
    }

    #[test]
    fn a_late_cancel_of_a_middle_node_cannot_split_the_path() {
        let [parent, child, grandchild] = done_mid_walk(DEADLINE_EXCEEDED);
        assert_eq!(grandchild.err(), Some(ContextError::DeadlineExceeded));
        // The child's own cancel, which looked before the deadline and got here late.
        child.node().unwrap().cancel(ContextError::Canceled, true);
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        parent.node().unwrap().settle();
    }

    #[test]
    fn a_context_made_mid_walk_after_the_deadline_takes_the_walks_error() {
        let [parent, child, _grandchild] = done_mid_walk(CANCELED);
        let (late, _cancel) = child.with_cancel();
        assert_eq!(late.err(), Some(ContextError::Canceled));
        assert_eq!(child.err(), Some(ContextError::Canceled));
        parent.node().unwrap().settle();
    }

    #[test]
    fn an_own_deadline_passed_before_the_walk_came_stays_a_deadline() {
        // Go's timer for the child's own deadline fires on its own, so it may beat the
        // parent's walk: the deadline recorded when the walk finds it passed.
        let past = Instant::now();
        let parent = node_by_hand(None, ACTIVE, past + Duration::from_secs(3600), true);
        let child = node_by_hand(parent.node(), ACTIVE, past, true);
        parent.node().unwrap().cancel(ContextError::Canceled, true);
        assert_eq!(parent.err(), Some(ContextError::Canceled));
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
    }

    #[test]
    fn an_inherited_deadline_that_passed_comes_before_a_cancel() {
        // Nobody looked since the parent's deadline passed: its timer would have fired first,
        // for the parent and the child.
        let past = Instant::now();
        let parent = node_by_hand(None, ACTIVE, past, true);
        let child = node_by_hand(parent.node(), ACTIVE, past, false);
        let cancel = Canceler {
            handle: Arc::clone(child.handle.as_ref().unwrap()),
        };
        cancel.cancel();
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
    }

    #[test]
    fn a_cancelled_leaf_takes_its_handle_less_parent_along() {
        let (root, _cancel) = Context::background().with_cancel();
        let (leaf, leaf_cancel) = root.with_cancel().0.with_cancel();
        assert_eq!(root.listed_children(), 1);
        leaf_cancel.cancel();
        assert_eq!(root.listed_children(), 0);
        assert_eq!(leaf.err(), Some(ContextError::Canceled));
        drop((leaf, leaf_cancel));
        assert_eq!(root.listed_children(), 0);
    }

    #[test]
    fn a_cancelled_tree_is_freed() {
        for middle_first in [false, true] {
            let (root, cancel) = Context::background().with_cancel();
            let (middle, middle_cancel) = root.with_cancel();
            let (leaf, leaf_cancel) = middle.with_cancel();
            let nodes = [&root, &middle, &leaf].map(|ctx| Arc::downgrade(ctx.node().unwrap()));
            if middle_first {
                middle_cancel.cancel();
            }
            cancel.cancel();
            assert!(middle.node().unwrap().lists.lock().walking.is_none());
            drop((root, cancel, middle, middle_cancel, leaf, leaf_cancel));
            assert!(
                nodes.iter().all(|node| node.upgrade().is_none()),
                "a node leaked"
            );
        }
    }

    #[test]
    fn a_node_without_handles_stays_while_it_has_children() {
        let (root, cancel) = Context::background().with_cancel();
        let (leaf, _c) = root.with_cancel().0.with_cancel().0.with_cancel();
        assert_eq!(
            root.listed_children(),
            1,
            "the handle-less middle left too early"
        );
        cancel.cancel();
        assert_eq!(leaf.err(), Some(ContextError::Canceled));

        let (root, _cancel) = Context::background().with_cancel();
        let (mid, mid_cancel) = root.with_cancel();
        let (leaf, leaf_cancel) = mid.with_cancel().0.with_cancel();
        drop((mid, mid_cancel));
        assert_eq!(root.listed_children(), 1);
        drop((leaf, leaf_cancel)); // the whole handle-less chain leaves, up to the root
        assert_eq!(root.listed_children(), 0);
    }

    #[test]
    fn wakers_are_forgotten() {
        let (ctx, _cancel) = Context::background().with_cancel();
        assert!(!ctx.wait_for(Duration::ZERO));
        assert!(ctx.node().unwrap().lists.lock().wakers.is_empty());
    }

    #[test]
    fn a_deep_chain_of_dropped_handles_neither_leaks_nor_recurses() {
        let depth = if cfg!(miri) { 100 } else { 100_000 };
        let (root, cancel) = Context::background().with_cancel();
        let mut ctx = root.clone();
        for _ in 0..depth {
            ctx = ctx.with_cancel().0;
        }
        assert_eq!(root.listed_children(), 1);
        drop(ctx);
        assert_eq!(root.listed_children(), 0);

        let mut ctx = root.clone();
        for _ in 0..depth {
            ctx = ctx.with_cancel().0;
        }
        cancel.cancel();
        assert!(ctx.is_done());
    }

    #[test]
    fn a_deep_chain_cancels_without_recursion() {
        let depth = if cfg!(miri) { 100 } else { 100_000 };
        let (root, cancel) = Context::background().with_cancel();
        let mut chain = vec![root];
        let mut cancelers = Vec::new();
        for _ in 0..depth {
            let (next, c) = chain.last().unwrap().with_cancel();
            chain.push(next);
            cancelers.push(c);
        }
        cancel.cancel();
        assert!(chain.iter().all(Context::is_done));
        // Drop from the leaf up, so that dropping does not recurse down the chain either.
        while chain.pop().is_some() {
            cancelers.pop();
        }
    }
}
