//! One budget of cached directory fds for the whole daemon.
//!
//! The overlay caches an `O_PATH` fd per directory node and layer ([`DirFdSlot`]). Without a
//! bound, a walk of a large tree keeps one fd per directory seen and runs into the process's
//! `RLIMIT_NOFILE`. Every slot therefore counts against one process-wide [`DirFdBudget`],
//! sized from the soft fd limit (half of it: the rest is head-room for open files, the journal,
//! sockets and FUSE). When a new fd takes the count over the budget, a clock sweep evicts
//! cached fds that were not used since the hand last passed (second chance); an evicted slot is
//! simply empty and the next user reopens it by walking from the layer's root.
//!
//! Lock-light: a hit takes only its own slot's mutex. The clock is sharded; a shard's mutex is
//! held for one `pop_front`/`push_back`, never across a syscall, and a fd is closed after every
//! lock is released. Slots are only `try_lock`ed by the sweep, so it never waits on (or
//! deadlocks with) a thread that is opening a directory.

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Number of clock shards (a power of two).
const SHARDS: usize = 16;
/// Smallest budget, whatever the limit (a daemon needs a few directories to do anything).
const MIN_BUDGET: usize = 16;

/// The process-wide budget, sized from the soft `RLIMIT_NOFILE` at first use (mountd raises
/// its limit before it opens any workspace).
pub(crate) fn global() -> &'static DirFdBudget {
    static GLOBAL: OnceLock<DirFdBudget> = OnceLock::new();
    GLOBAL.get_or_init(|| DirFdBudget::new(budget_for(crate::sys::nofile_limit().0)))
}

/// The budget for a soft fd limit: half of it, at least [`MIN_BUDGET`].
pub(crate) fn budget_for(soft_limit: u64) -> usize {
    usize::try_from(soft_limit / 2)
        .unwrap_or(usize::MAX)
        .max(MIN_BUDGET)
}

/// How many directory fds may stay cached, and the clock that picks which to drop.
pub(crate) struct DirFdBudget {
    limit: usize,
    cached: AtomicUsize,
    shards: [Mutex<VecDeque<Weak<DirFdSlot>>>; SHARDS],
    push_hand: AtomicUsize,
    sweep_hand: AtomicUsize,
}

impl DirFdBudget {
    pub(crate) fn new(limit: usize) -> DirFdBudget {
        DirFdBudget {
            limit,
            cached: AtomicUsize::new(0),
            shards: std::array::from_fn(|_| Mutex::new(VecDeque::new())),
            push_hand: AtomicUsize::new(0),
            sweep_hand: AtomicUsize::new(0),
        }
    }

    /// Fds cached now (in slots; fds a request still holds after eviction are not counted).
    pub(crate) fn cached(&self) -> usize {
        self.cached.load(Ordering::Relaxed)
    }

    /// The budget.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    fn enlist(&self, slot: &Arc<DirFdSlot>) {
        let i = self.push_hand.fetch_add(1, Ordering::Relaxed) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap()
            .push_back(Arc::downgrade(slot));
    }

    /// Evicts until the count is within the budget (or `extra` below it), skipping entries
    /// used since the hand last passed (and clearing their mark). At most two rounds of the
    /// clock: the first clears every mark, so the second finds a victim unless all are in use.
    fn sweep(&self, extra: usize) {
        let target = self.limit.saturating_sub(extra);
        let mut tries = 2 * self.cached() + 2 * SHARDS;
        let mut empty_in_a_row = 0;
        while self.cached() > target && tries > 0 && empty_in_a_row < SHARDS {
            let i = self.sweep_hand.fetch_add(1, Ordering::Relaxed) % SHARDS;
            let Some(weak) = self.shards[i].lock().unwrap().pop_front() else {
                empty_in_a_row += 1;
                continue;
            };
            empty_in_a_row = 0;
            tries -= 1;
            let Some(slot) = weak.upgrade() else {
                continue; // the node is gone; its drop already gave the fd back
            };
            match slot.try_evict() {
                Sweep::Evicted(fd) => drop(fd),
                Sweep::Emptied => {}
                Sweep::Kept => self.shards[i].lock().unwrap().push_back(weak),
            }
        }
    }

    /// The process ran out of fds: give back a good share of the cache at once.
    fn relieve(&self) {
        self.sweep(self.limit / 4 + 1);
    }
}

enum Sweep {
    /// The slot's fd was taken out (close it after unlocking).
    Evicted(Arc<OwnedFd>),
    /// The slot was empty; it left the clock.
    Emptied,
    /// In use (recently used, or locked): it stays on the clock.
    Kept,
}

/// One cached directory fd, counted against a [`DirFdBudget`].
pub(crate) struct DirFdSlot {
    fd: Mutex<Option<Arc<OwnedFd>>>,
    /// Used (a cache hit) since the clock hand last passed.
    used: AtomicBool,
    /// Has an entry on the clock (at most one per slot).
    on_clock: AtomicBool,
    budget: &'static DirFdBudget,
}

impl DirFdSlot {
    pub(crate) fn new(budget: &'static DirFdBudget) -> Arc<DirFdSlot> {
        Arc::new(DirFdSlot {
            fd: Mutex::new(None),
            used: AtomicBool::new(false),
            on_clock: AtomicBool::new(false),
            budget,
        })
    }

    /// The cached fd, or the one `open` gives (cached, within the budget). An `EMFILE` or
    /// `ENFILE` from `open` first makes the budget give fds back, then `open` is tried once
    /// more; its error is returned as is.
    pub(crate) fn get_or_open(
        self: &Arc<Self>,
        open: impl Fn() -> io::Result<OwnedFd>,
    ) -> io::Result<Arc<OwnedFd>> {
        let mut slot = self.fd.lock().unwrap();
        if let Some(fd) = &*slot {
            self.touch();
            return Ok(fd.clone());
        }
        let fd = match open() {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                self.budget.relieve();
                open()?
            }
            r => r?,
        };
        let fd = Arc::new(fd);
        let enlist = self.fill(&mut slot, fd.clone());
        drop(slot);
        self.settle(enlist);
        Ok(fd)
    }

    /// Caches `fd` (replacing what was cached).
    pub(crate) fn store(self: &Arc<Self>, fd: Arc<OwnedFd>) {
        let mut slot = self.fd.lock().unwrap();
        let old = slot.take();
        if old.is_some() {
            self.budget.cached.fetch_sub(1, Ordering::Relaxed);
        }
        let enlist = self.fill(&mut slot, fd);
        drop(slot);
        drop(old);
        self.settle(enlist);
    }

    /// Drops the cached fd (the directory moved, or left this layer).
    pub(crate) fn clear(&self) {
        let old = self.fd.lock().unwrap().take();
        if old.is_some() {
            self.budget.cached.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn touch(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }

    /// Puts `fd` in the (empty, locked) slot; true if the slot must be put on the clock.
    fn fill(&self, slot: &mut Option<Arc<OwnedFd>>, fd: Arc<OwnedFd>) -> bool {
        // Unmarked: a fd opened once and never used again is the first to go; one more use
        // marks it (CLOCK).
        *slot = Some(fd);
        self.used.store(false, Ordering::Relaxed);
        self.budget.cached.fetch_add(1, Ordering::Relaxed);
        !self.on_clock.swap(true, Ordering::AcqRel)
    }

    /// After a fill, with no lock held: enlist on the clock and bring the count within budget.
    fn settle(self: &Arc<Self>, enlist: bool) {
        if enlist {
            self.budget.enlist(self);
        }
        if self.budget.cached() > self.budget.limit {
            self.budget.sweep(0);
        }
    }

    fn try_evict(&self) -> Sweep {
        let Ok(mut slot) = self.fd.try_lock() else {
            return Sweep::Kept;
        };
        if slot.is_none() {
            self.on_clock.store(false, Ordering::Release);
            return Sweep::Emptied;
        }
        if self.used.swap(false, Ordering::Relaxed) {
            return Sweep::Kept;
        }
        self.budget.cached.fetch_sub(1, Ordering::Relaxed);
        self.on_clock.store(false, Ordering::Release);
        Sweep::Evicted(slot.take().expect("checked above"))
    }
}

impl Drop for DirFdSlot {
    fn drop(&mut self) {
        let slot = self.fd.get_mut().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            self.budget.cached.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn budget(limit: usize) -> &'static DirFdBudget {
        Box::leak(Box::new(DirFdBudget::new(limit)))
    }

    fn open_tmp() -> io::Result<OwnedFd> {
        crate::sys::open_root(&std::env::temp_dir())
    }

    #[test]
    fn the_count_stays_within_the_budget() {
        let b = budget(8);
        let slots: Vec<_> = (0..100).map(|_| DirFdSlot::new(b)).collect();
        for s in &slots {
            s.get_or_open(open_tmp).unwrap();
            assert!(b.cached() <= 8, "{} cached", b.cached());
        }
        let held = slots
            .iter()
            .filter(|s| s.fd.lock().unwrap().is_some())
            .count();
        assert_eq!(held, b.cached());
        assert_eq!(held, 8);
    }

    #[test]
    fn an_evicted_slot_reopens_on_demand() {
        let b = budget(2);
        let slots: Vec<_> = (0..5).map(|_| DirFdSlot::new(b)).collect();
        for s in &slots {
            s.get_or_open(open_tmp).unwrap();
        }
        assert!(
            slots[0].fd.lock().unwrap().is_none(),
            "the oldest was evicted"
        );
        let fd = slots[0].get_or_open(open_tmp).unwrap();
        assert!(crate::sys::fstat(fd.as_fd()).is_ok());
        assert!(b.cached() <= 2);
    }

    #[test]
    fn recently_used_slots_get_a_second_chance() {
        let b = budget(4);
        let hot = DirFdSlot::new(b);
        hot.get_or_open(open_tmp).unwrap();
        let cold: Vec<_> = (0..20).map(|_| DirFdSlot::new(b)).collect();
        for s in &cold {
            s.get_or_open(open_tmp).unwrap();
            hot.get_or_open(|| panic!("hot slot was evicted")).unwrap();
        }
    }

    #[test]
    fn dropped_and_cleared_slots_give_their_fd_back() {
        let b = budget(4);
        let a = DirFdSlot::new(b);
        let c = DirFdSlot::new(b);
        a.get_or_open(open_tmp).unwrap();
        c.get_or_open(open_tmp).unwrap();
        assert_eq!(b.cached(), 2);
        drop(a);
        assert_eq!(b.cached(), 1);
        c.clear();
        assert_eq!(b.cached(), 0);
        c.store(Arc::new(open_tmp().unwrap()));
        c.store(Arc::new(open_tmp().unwrap()));
        assert_eq!(b.cached(), 1);
    }

    #[test]
    fn errors_are_returned_not_cached() {
        let b = budget(4);
        let s = DirFdSlot::new(b);
        let calls = AtomicUsize::new(0);
        let err = s
            .get_or_open(|| {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            })
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
        assert_eq!(
            calls.load(Ordering::Relaxed),
            2,
            "retried once after relieving"
        );
        assert_eq!(b.cached(), 0);
        assert!(s.fd.lock().unwrap().is_none());
    }

    #[test]
    fn concurrent_users_keep_the_count_exact() {
        let b = budget(32);
        let slots: Arc<Vec<_>> = Arc::new((0..200).map(|_| DirFdSlot::new(b)).collect());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let s = &slots[(i * 7 + t * 13) % slots.len()];
                        if i % 50 == 0 {
                            s.clear();
                        } else {
                            s.get_or_open(open_tmp).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let held = slots
            .iter()
            .filter(|s| s.fd.lock().unwrap().is_some())
            .count();
        assert_eq!(held, b.cached());
        assert!(held <= 32 + 4, "{held} cached over a budget of 32");
    }
}
