//! `CancelToken`: a tree of cancellation signals.
//!
//! Each node keeps its waiters and children under one small lock, next to an
//! atomic flag for the fast `is_cancelled` check. event-listener would do
//! the waiting equally well, but with everything under the node's own lock
//! the whole cancel-versus-wait protocol is visible to loom (tests/loom.rs).
//!
//! Children are held strongly by their parent so that cancelling reaches
//! them, and each child knows its parent and its key there (under its own
//! lock). When a node's last handle is dropped nobody can cancel it
//! directly any more: it leaves its parent, and its children become the
//! parent's. So the tree holds only nodes that have handles, and a chain of
//! tokens each made from the last and then dropped stays one level deep.
//!
//! Every node's flag is set by the `cancel` that reaches it, under the
//! node's lock, children first: a node that reads as cancelled has its
//! whole subtree cancelled. A `cancel` holds the lock of the node it was
//! called on while it walks the subtree below, so another `cancel` of that
//! node or of an ancestor, which must take that lock, returns only once the
//! whole subtree reads as cancelled; a `cancel` of a node that such a walk
//! has already taken waits for it the same way. Locks are taken ancestor
//! before descendant; code that starts from a node and needs its parent
//! reads the parent under the node's lock, lets go, takes both in order and
//! checks that the parent is still the same.

use crate::primitives::{Arc, AtomicBool, AtomicUsize, Mutex, MutexGuard, Ordering};
use crate::wake::{resume, wake_each};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The error of a future stopped by a [`CancelToken`].
///
/// # Examples
///
/// ```
/// use portasync::{CancelToken, Cancelled};
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// token.cancel();
/// let err: Cancelled = token.run(std::future::pending::<()>()).await.unwrap_err();
/// assert_eq!(err.to_string(), "operation was cancelled");
/// # });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("operation was cancelled")]
pub struct Cancelled(());

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cancelled")
    }
}

/// A cancellation signal that can be shared, awaited and arranged in a tree,
/// like tokio-util's `CancellationToken`, asyncio's `Task.cancel()` reaching
/// a whole task tree, or a trio cancel scope.
///
/// - Clones share one token. [`cancel`](Self::cancel) is permanent and wakes
///   every waiter once.
/// - [`child`](Self::child) makes a token that is cancelled with its parent,
///   never the other way; a child made after its parent was cancelled starts
///   cancelled. A child leaves the tree once its last handle is dropped: no
///   memory is held for it. Its own children then hang from its parent and
///   are cancelled with it, so a loop that replaces a token with that
///   token's child (`token = token.child()`) holds one node, not one per
///   generation.
/// - [`drop_guard`](Self::drop_guard) cancels when dropped (for "cancel the
///   workers when this function returns or unwinds").
///
/// Cost: `is_cancelled` is one atomic load. Making a child and waiting take
/// the node's lock briefly; dropping the last handle takes the parent's and
/// the children's too. `cancel` takes the lock of every node in the subtree,
/// one at a time, and holds the token's own lock meanwhile.
///
/// # Examples
///
/// ```
/// use portasync::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let shutdown = CancelToken::new();
/// let worker = shutdown.child();
/// let waiting = worker.cancelled();
/// shutdown.cancel();
/// waiting.await; // the child saw its parent's cancellation
/// assert!(worker.is_cancelled());
/// # });
/// ```
pub struct CancelToken {
    node: Arc<Node>,
}

struct Node {
    /// Set under `inner`'s lock, once; read without it.
    cancelled: AtomicBool,
    /// Live `CancelToken` handles (clones, guards, owned futures) on this node.
    handles: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The node this one is a child of, and this node's key in its
    /// `children`; `None` for a root, and once a cancel took it or it left.
    parent: Option<(Arc<Node>, usize)>,
    children: Slab<Arc<Node>>,
    waiters: Slab<Waker>,
    /// A cancel from above has taken this node from its parent and will
    /// cancel it (after its subtree): the node that cancel was called on,
    /// whose lock it holds until it is done. `None` once cancelled.
    doomed_by: Option<Arc<Node>>,
}

/// Entries under stable keys, with no hashing: a key is reused only after
/// its entry was removed. Once empty it lets go of its peak capacity.
/// (After a cancel takes everything, no entry is added again, so a stale key
/// never meets a new entry.)
struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(key) => {
                self.entries[key] = Some(value);
                key
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }

    /// The key the next `insert` will return.
    fn vacant_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key)?.as_mut()
    }

    fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.entries.get_mut(key)?.take()?;
        self.len -= 1;
        if self.len == 0 {
            self.entries.clear();
            self.free.clear();
            if self.entries.capacity() > 64 {
                self.entries.shrink_to_fit();
                self.free.shrink_to_fit();
            }
        } else {
            self.free.push(key);
        }
        Some(value)
    }

    fn take_all(&mut self) -> impl Iterator<Item = T> + use<T> {
        self.len = 0;
        self.free.clear();
        std::mem::take(&mut self.entries).into_iter().flatten()
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl Node {
    fn new(parent: Option<(Arc<Node>, usize)>, cancelled: bool) -> Arc<Self> {
        Arc::new(Self {
            cancelled: AtomicBool::new(cancelled),
            handles: AtomicUsize::new(1),
            inner: Mutex::new(Inner {
                parent,
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this node was cancelled, directly or through an ancestor.
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Takes `this`, whose last handle is gone, out of the tree: out of its
    /// parent's children, and its own children into the parent's (or made
    /// roots, under a root). A cancel in progress above takes care of it
    /// instead, if it already took it from its parent.
    fn release(this: &Arc<Self>) {
        loop {
            let parent = {
                let mut inner = this.lock();
                if inner.doomed_by.is_some() {
                    // A cancel from above has taken it, and cancels its
                    // children with it. (One cancelled already has none,
                    // and leaves its parent below like any other.)
                    return;
                }
                match &inner.parent {
                    Some((parent, _)) => parent.clone(),
                    None => {
                        // A root (it has no parent to gain): its children
                        // become roots, told so under this lock, which a
                        // child leaving at the same time must take.
                        let children: Vec<_> = inner.children.take_all().collect();
                        for child in &children {
                            child.lock().parent = None;
                        }
                        drop(inner);
                        drop(children);
                        return;
                    }
                }
            };
            let mut above = parent.lock();
            let mut inner = this.lock();
            let key = match &inner.parent {
                Some((still, key)) if Arc::ptr_eq(still, &parent) => *key,
                // Moved up, or taken by a cancel, meanwhile: look again.
                _ => continue,
            };
            let own = above.children.remove(key);
            inner.parent = None;
            for child in inner.children.take_all() {
                let mut below = child.lock();
                let key = above.children.vacant_key();
                below.parent = Some((parent.clone(), key));
                drop(below);
                let taken = above.children.insert(child);
                debug_assert_eq!(taken, key);
            }
            drop(inner);
            drop(above);
            // Dropped with no lock held (the caller still holds `this`).
            drop(own);
            return;
        }
    }

    /// Takes every child out of `inner` (the node being cancelled, locked)
    /// onto `pending`, marked as taken by the cancel of `root`.
    fn take_children(root: &Arc<Node>, inner: &mut Inner, pending: &mut Vec<Arc<Node>>) {
        for child in inner.children.take_all() {
            let mut below = child.lock();
            below.parent = None;
            if !child.cancelled.load(Ordering::Acquire) {
                below.doomed_by = Some(root.clone());
                drop(below);
                pending.push(child);
            }
        }
    }

    /// Cancels this node and its subtree, without recursion (a deep chain of
    /// children cannot overflow the stack). Flags are set children first,
    /// so a node that reads as cancelled has its whole subtree cancelled;
    /// this node's lock is held throughout (see the module's docs). Wakers
    /// run once every lock is released; should one panic, every waiter has
    /// been woken before the panic goes on.
    fn cancel(this: &Arc<Self>) {
        let mut waiters = Vec::new();
        let mut inner = loop {
            let inner = this.lock();
            if this.cancelled.load(Ordering::Acquire) {
                return; // with its subtree
            }
            let Some(walker) = inner.doomed_by.clone() else {
                break inner;
            };
            // A cancel from above took this node and will cancel it with
            // its subtree: wait until it is done, by taking the lock it
            // holds meanwhile (this node's is let go first: that one is
            // above).
            drop(inner);
            drop(walker.lock());
        };
        // Each node is pushed again under its children, and its flag set
        // when it comes up with none left: new ones may have come (a child
        // made, or a leaving child's children handed up) while it waited.
        let mut pending = Vec::new();
        Self::take_children(this, &mut inner, &mut pending);
        while let Some(node) = pending.pop() {
            let mut below = node.lock();
            if node.cancelled.load(Ordering::Acquire) {
                continue;
            }
            if below.children.len() == 0 {
                below.doomed_by = None;
                node.cancelled.store(true, Ordering::Release);
                waiters.extend(below.waiters.take_all());
            } else {
                let mut children = Vec::new();
                Self::take_children(this, &mut below, &mut children);
                drop(below);
                pending.push(node);
                pending.extend(children);
            }
        }
        // Nothing was added here meanwhile: that takes this node's lock.
        this.cancelled.store(true, Ordering::Release);
        waiters.extend(inner.waiters.take_all());
        drop(inner);
        resume(wake_each(waiters));
    }
}

impl CancelToken {
    /// A new token, not cancelled, with no parent.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = portasync::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self {
            node: Node::new(None, false),
        }
    }

    /// Cancels this token and every child, grandchild and so on. Idempotent;
    /// wakes every waiter once.
    ///
    /// # Panics
    ///
    /// If a waiter's waker panics: the first such panic is resumed here,
    /// once the whole subtree is cancelled and every other waiter woken.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = portasync::CancelToken::new();
    /// token.cancel();
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        Node::cancel(&self.node);
    }

    /// Whether the token has been cancelled (directly, or through a parent).
    ///
    /// # Examples
    ///
    /// ```
    /// let parent = portasync::CancelToken::new();
    /// let child = parent.child();
    /// parent.cancel();
    /// assert!(child.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// A future that completes once the token is cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let remote = token.clone();
    /// std::thread::spawn(move || remote.cancel());
    /// token.cancelled().await;
    /// # });
    /// ```
    pub fn cancelled(&self) -> WaitForCancel<'_> {
        WaitForCancel {
            node: &self.node,
            key: None,
        }
    }

    /// Like [`cancelled`](Self::cancelled), holding its own handle on the
    /// token, so it can be moved into a spawned task.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let waiting = token.cancelled_owned();
    /// drop(token.clone());
    /// token.cancel();
    /// waiting.await;
    /// # });
    /// ```
    pub fn cancelled_owned(&self) -> WaitForCancelOwned {
        WaitForCancelOwned {
            token: self.clone(),
            key: None,
        }
    }

    /// A token cancelled together with this one (and by its own `cancel`),
    /// whose cancellation never reaches this one. Made after this token was
    /// cancelled, it starts cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let parent = portasync::CancelToken::new();
    /// let child = parent.child();
    /// child.cancel();
    /// assert!(!parent.is_cancelled());
    /// ```
    pub fn child(&self) -> CancelToken {
        let mut inner = self.node.lock();
        // The flag is set under this lock, once the node has no children
        // left: either it is set already, or the cancel (this node's own, or
        // one from above on its way here or come back for late children)
        // takes the new child with the rest before it sets the flag.
        if self.node.cancelled.load(Ordering::Acquire) {
            return Self {
                node: Node::new(None, true),
            };
        }
        let key = inner.children.vacant_key();
        let node = Node::new(Some((self.node.clone(), key)), false);
        let taken = inner.children.insert(node.clone());
        debug_assert_eq!(taken, key);
        Self { node }
    }

    /// A guard that cancels this token when dropped; the token stays usable.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = portasync::CancelToken::new();
    /// {
    ///     let _guard = token.drop_guard();
    ///     assert!(!token.is_cancelled());
    /// }
    /// assert!(token.is_cancelled());
    /// ```
    pub fn drop_guard(&self) -> CancelGuard {
        CancelGuard {
            token: Some(self.clone()),
        }
    }

    /// Runs `future` until it completes or this token is cancelled.
    ///
    /// # Errors
    ///
    /// The output is [`Cancelled`] if the token is cancelled first.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// assert_eq!(token.run(async { 7 }).await, Ok(7));
    /// token.cancel();
    /// assert!(token.run(std::future::pending::<()>()).await.is_err());
    /// # });
    /// ```
    pub fn run<F: IntoFuture>(&self, future: F) -> CancelOn<F::IntoFuture> {
        CancelOn {
            future: future.into_future(),
            token: self.clone(),
            key: None,
        }
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for CancelToken {
    fn clone(&self) -> Self {
        self.node.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            node: self.node.clone(),
        }
    }
}

impl Drop for CancelToken {
    fn drop(&mut self) {
        if self.node.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last handle: nobody can cancel this node directly any more,
        // so it leaves the tree, and its children are its parent's now.
        Node::release(&self.node);
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Registers `waker` on `node` under `key` unless the node is cancelled;
/// `true` when cancelled. Shared by the futures below (non-generic).
fn poll_cancelled(node: &Node, key: &mut Option<usize>, waker: &Waker) -> bool {
    if node.is_cancelled() {
        return true;
    }
    let stale = {
        let mut inner = node.lock();
        // Checked again under the lock `cancel` takes after setting the
        // flag: a waker stored here is one `cancel` will find.
        if node.is_cancelled() {
            return true;
        }
        match key.and_then(|key| inner.waiters.get_mut(key)) {
            Some(stored) if stored.will_wake(waker) => None,
            Some(stored) => Some(std::mem::replace(stored, waker.clone())),
            None => {
                *key = Some(inner.waiters.insert(waker.clone()));
                None
            }
        }
    };
    drop(stale); // outside the lock: a waker's drop may call back in
    false
}

/// Leaves `node`'s waiter list, if still on it.
fn forget_waiter(node: &Node, key: &mut Option<usize>) {
    if let Some(key) = key.take() {
        let waker = node.lock().waiters.remove(key);
        drop(waker);
    }
}

/// The future of [`CancelToken::cancelled`].
///
/// # Examples
///
/// ```
/// let token = portasync::CancelToken::new();
/// token.cancel();
/// futures_lite::future::block_on(token.cancelled());
/// ```
///
/// # Cancel safety
///
/// Dropping it only removes it from the token's waiters.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForCancel<'a> {
    node: &'a Arc<Node>,
    key: Option<usize>,
}

impl Future for WaitForCancel<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if poll_cancelled(this.node, &mut this.key, cx.waker()) {
            forget_waiter(this.node, &mut this.key);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for WaitForCancel<'_> {
    fn drop(&mut self) {
        forget_waiter(self.node, &mut self.key);
    }
}

impl fmt::Debug for WaitForCancel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancel")
            .field("cancelled", &self.node.is_cancelled())
            .finish()
    }
}

/// The future of [`CancelToken::cancelled_owned`].
///
/// # Examples
///
/// ```
/// let token = portasync::CancelToken::new();
/// let waiting = token.cancelled_owned();
/// token.cancel();
/// futures_lite::future::block_on(waiting);
/// ```
///
/// # Cancel safety
///
/// Dropping it only removes it from the token's waiters.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForCancelOwned {
    token: CancelToken,
    key: Option<usize>,
}

impl Future for WaitForCancelOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if poll_cancelled(&this.token.node, &mut this.key, cx.waker()) {
            forget_waiter(&this.token.node, &mut this.key);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for WaitForCancelOwned {
    fn drop(&mut self) {
        forget_waiter(&self.token.node, &mut self.key);
    }
}

impl fmt::Debug for WaitForCancelOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancelOwned")
            .field("token", &self.token)
            .finish()
    }
}

/// Cancels its token when dropped, from [`CancelToken::drop_guard`].
///
/// # Examples
///
/// ```
/// let token = portasync::CancelToken::new();
/// let guard = token.drop_guard();
/// let token_again = guard.disarm(); // changed our mind: no cancel on drop
/// assert!(!token_again.is_cancelled());
/// ```
#[must_use = "the token is cancelled as soon as the guard is dropped"]
pub struct CancelGuard {
    token: Option<CancelToken>,
}

impl CancelGuard {
    /// Gives the token back without cancelling it.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = portasync::CancelToken::new();
    /// let guard = token.drop_guard();
    /// drop(guard.disarm());
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn disarm(mut self) -> CancelToken {
        self.token
            .take()
            .expect("the token is only taken here or on drop")
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

impl fmt::Debug for CancelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelGuard")
            .field("token", &self.token)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// A future that stops when a [`CancelToken`] is cancelled, from
    /// [`CancelToken::run`] or
    /// [`FutureExt::cancel_on`](crate::FutureExt::cancel_on).
    ///
    /// The inner future is polled first, so a result that is ready is never
    /// thrown away, even if the token was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::prelude::*;
    /// use portasync::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// token.cancel();
    /// assert!(std::future::pending::<()>().cancel_on(&token).await.is_err());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner future and leaves the token's waiters.
    #[must_use = "futures do nothing unless awaited"]
    pub struct CancelOn<F> {
        #[pin]
        future: F,
        token: CancelToken,
        key: Option<usize>,
    }

    impl<F> PinnedDrop for CancelOn<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            forget_waiter(&this.token.node, this.key);
        }
    }
}

impl<F> CancelOn<F> {
    pub(crate) fn new(future: F, token: &CancelToken) -> Self {
        Self {
            future,
            token: token.clone(),
            key: None,
        }
    }
}

impl<F: Future> Future for CancelOn<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if poll_cancelled(&this.token.node, this.key, cx.waker()) {
            forget_waiter(&this.token.node, this.key);
            return Poll::Ready(Err(Cancelled(())));
        }
        Poll::Pending
    }
}

impl<F: fmt::Debug> fmt::Debug for CancelOn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelOn")
            .field("future", &self.future)
            .field("token", &self.token)
            .finish()
    }
}

#[cfg(all(test, not(portasync_loom)))]
mod tests {
    use super::CancelToken;

    fn children(token: &CancelToken) -> usize {
        token.node.lock().children.len()
    }

    fn capacity(token: &CancelToken) -> usize {
        token.node.lock().children.entries.capacity()
    }

    /// 100,000 children of one long-lived parent, one at a time (every
    /// other one cancelled before it is dropped, as a request's token on a
    /// timeout) and all at once: afterwards the parent holds nothing for
    /// them. (Cancelled ones were once kept, in a cycle with their parent;
    /// from a review.)
    #[test]
    fn dropped_children_leave_no_trace() {
        let parent = CancelToken::new();
        for i in 0..100_000 {
            let child = parent.child();
            let grandchild = child.child();
            let _clone = grandchild.clone();
            if i % 2 == 0 {
                child.cancel();
            }
        }
        assert_eq!(children(&parent), 0);
        assert!(!parent.is_cancelled());

        let all: Vec<_> = (0..100_000).map(|_| parent.child()).collect();
        assert_eq!(children(&parent), 100_000);
        drop(all);
        assert_eq!(children(&parent), 0);
        assert!(
            capacity(&parent) <= 64,
            "kept the peak capacity: {}",
            capacity(&parent)
        );
    }

    #[test]
    fn cancelled_parent_lets_go_of_children() {
        let parent = CancelToken::new();
        let kept: Vec<_> = (0..10).map(|_| parent.child()).collect();
        parent.cancel();
        assert_eq!(children(&parent), 0);
        assert!(kept.iter().all(CancelToken::is_cancelled));
    }

    #[test]
    fn waiters_leave_when_dropped() {
        let token = CancelToken::new();
        for _ in 0..1_000 {
            let mut waiting = Box::pin(token.cancelled());
            assert!(
                futures_lite::future::block_on(futures_lite::future::poll_once(&mut waiting))
                    .is_none()
            );
        }
        assert_eq!(token.node.lock().waiters.len(), 0);
    }

    /// A chain deeper than any stack would allow for recursion.
    #[test]
    fn deep_chains_cancel_without_recursion() {
        let root = CancelToken::new();
        let mut chain = vec![root.clone()];
        for _ in 0..200_000 {
            let next = chain.last().unwrap().child();
            chain.push(next);
        }
        root.cancel();
        assert!(chain.last().unwrap().is_cancelled());
        // Dropped root first, the deepest node frees the whole chain of
        // ancestors: that must not recurse either.
        drop(root);
        drop(chain);
    }

    /// A token replaced by its own child, generation after generation (a
    /// reconnect loop): the root holds the one live generation, no chain of
    /// the dropped ones (a review measured 208 bytes kept per generation,
    /// and `is_cancelled` walking all of them), and a cancel still reaches it.
    #[test]
    fn a_chain_of_generations_holds_only_the_live_one() {
        let root = CancelToken::new();
        let mut current = root.child();
        for _ in 0..100_000 {
            current = current.child();
        }
        assert_eq!(children(&root), 1);
        let parent = current.node.lock().parent.clone();
        assert!(parent.is_some_and(|(parent, _)| super::Arc::ptr_eq(&parent, &root.node)));
        assert!(!current.is_cancelled());
        root.cancel();
        assert!(current.is_cancelled());
        assert_eq!(children(&root), 0);
    }

    /// The middle of three dropped: the grandchild hangs from the root now,
    /// and the root's own drop makes it a root.
    #[test]
    fn children_of_a_dropped_token_move_up() {
        let root = CancelToken::new();
        let middle = root.child();
        let below: Vec<_> = (0..3).map(|_| middle.child()).collect();
        drop(middle);
        assert_eq!(children(&root), 3);
        drop(root);
        for token in &below {
            assert!(token.node.lock().parent.is_none());
            assert!(!token.is_cancelled());
        }
    }

    #[test]
    fn child_of_a_cancelled_token_starts_cancelled() {
        let parent = CancelToken::new();
        parent.cancel();
        let child = parent.child();
        assert!(child.is_cancelled());
        assert_eq!(children(&parent), 0);
    }
}
