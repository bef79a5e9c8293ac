//! Extended attributes. Only the `user.*` namespace is writable; reads pass through from the
//! entry's layer. Setting one copies the entry up and is journaled (as a change to the entry).

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;

use super::{Ino, Overlay, ROOT_INO};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, Op};
use crate::sys;

fn writable_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"user.")
}

impl Overlay {
    fn xattr_location(
        &self,
        ino: Ino,
    ) -> Result<(
        std::sync::Arc<std::os::fd::OwnedFd>,
        OsString,
        crate::relpath::RelPath,
    )> {
        let node = self.node(ino)?;
        let loc = node.loc();
        self.refuse_masked(&node, &loc.path)?;
        if ino == ROOT_INO {
            let fd = if node.is_upper() {
                &self.upper_root
            } else {
                &self.lower_root
            };
            return Ok((
                std::sync::Arc::new(fd.try_clone().ctx("dup", &loc.path)?),
                OsString::new(),
                loc.path,
            ));
        }
        let parent = loc
            .parent
            .as_ref()
            .ok_or_else(|| Error::no_parent(&loc.path))?;
        let fd = if node.is_upper() {
            self.upper_dir_fd(parent)?
        } else {
            self.lower_dir_fd(parent)?
        }
        .ok_or_else(|| Error::not_found(&loc.path))?;
        Ok((fd, loc.name, loc.path))
    }

    /// Reads one xattr.
    pub fn getxattr(&self, ino: Ino, name: &OsStr) -> Result<Vec<u8>> {
        let (fd, entry, path) = self.xattr_location(ino)?;
        sys::get_xattr(fd.as_fd(), &entry, name).ctx("getxattr", &path)
    }

    /// Lists xattr names.
    pub fn listxattr(&self, ino: Ino) -> Result<Vec<OsString>> {
        let (fd, entry, path) = self.xattr_location(ino)?;
        sys::list_xattrs(fd.as_fd(), &entry).ctx("listxattr", &path)
    }

    /// Sets a `user.*` xattr (copies up; other namespaces: EPERM).
    pub fn setxattr(&self, ino: Ino, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        self.change_xattr(ino, name, |fd, entry| {
            sys::lsetxattr(fd, entry, name, value, flags)
        })
    }

    /// Removes a `user.*` xattr.
    pub fn removexattr(&self, ino: Ino, name: &OsStr) -> Result<()> {
        self.change_xattr(ino, name, |fd, entry| sys::lremovexattr(fd, entry, name))
    }

    fn change_xattr(
        &self,
        ino: Ino,
        name: &OsStr,
        op: impl FnOnce(std::os::fd::BorrowedFd<'_>, &OsStr) -> std::io::Result<()>,
    ) -> Result<()> {
        let node = self.node(ino)?;
        let path = node.path();
        if name.as_encoded_bytes().starts_with(b"system.posix_acl_") {
            // No ACL support: say so the way filesystems without ACLs do, so `cp -a` and
            // `sed -i` stay quiet instead of reporting a permission error.
            return Err(Error::unsupported(&path));
        }
        if !writable_name(name) {
            return Err(Error::not_permitted(&path));
        }
        let base = self.base_for(&path)?;
        // Journal room first: a full disk fails the change before it happens.
        let link = if node.kind == super::Kind::Symlink {
            2 * 4096
        } else {
            0
        };
        let mut res = self.reserve(1, &[&path], link, false)?;
        self.copy_up(&node, true)?;
        let (fd, entry, path) = self.xattr_location(ino)?;
        op(fd.as_fd(), &entry).ctx("xattr", &path)?;
        let new = super::state::state_at(self.upper_root.as_fd(), &path, false)?;
        let new = match new {
            crate::journal::record::EntryState::File { mode, size, .. } => {
                super::state::state_at(self.upper_root.as_fd(), &path, true).unwrap_or(
                    crate::journal::record::EntryState::File {
                        hash: None,
                        mode,
                        size,
                    },
                )
            }
            other => other,
        };
        self.record_in(&mut res, Draft::new(Op::Xattr, path, base, new))?;
        Ok(())
    }
}
