//! The FUSE adapter: serves a workspace [`Overlay`](wsfs::overlay::Overlay) to the kernel.
//!
//! - `adapter`: the `fuser::Filesystem` impl, a thin translation onto the overlay;
//! - `attr`: type conversions and cache lifetimes;
//! - `passthrough`: per-inode I/O mode (FUSE passthrough for upper-layer files);
//! - `notify`: kernel cache invalidation from a dedicated thread;
//! - `watch`: inotify watcher feeding host changes to the overlay;
//! - `session`: mount, unmount and the [`MountHandle`];
//! - `reattach`: after a restart, the new mount replaces the dead one in containers;
//! - `settle`: the no-open mode's thread that hashes files whose writes went idle;
//! - `stale`: [`stale::prepare_mountpoint`], mountinfo parsing;
//! - `sys`: the few libc calls (the only `unsafe`), `open_tree`/`setns`/`move_mount` included.

mod adapter;
mod attr;
mod notify;
mod passthrough;
mod reattach;
mod session;
mod settle;
mod stale;
mod sys;
#[cfg(test)]
mod tests;
mod watch;

pub use session::{mount, MountHandle};
pub use stale::release_placeholder;
