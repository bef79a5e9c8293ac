//! A workspace: project + state dir + overlay + journal. (Bodies being written.)
#![allow(missing_docs, unused_variables)]

use std::path::Path;
use std::sync::Arc;

use crate::api;
use crate::error::Result;
use crate::journal::record::Record;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::state::{StateRoot, WorkspaceMeta};

/// One workspace, open.
pub struct Workspace {}

impl Workspace {
    /// Creates a new workspace for `project` (absolute, existing directory).
    pub fn create(state: &StateRoot, name: &str, project: &Path) -> Result<Arc<Workspace>> {
        todo!()
    }
    /// Opens an existing workspace: journal replay, interrupted commits rolled forward.
    pub fn open(state: &StateRoot, name: &str) -> Result<Arc<Workspace>> {
        todo!()
    }
    pub fn name(&self) -> &str {
        todo!()
    }
    pub fn meta(&self) -> WorkspaceMeta {
        todo!()
    }
    /// Updates and persists meta.json (mountpoint, mounted flag, image id).
    pub fn update_meta(&self, f: &dyn Fn(&mut WorkspaceMeta)) -> Result<()> {
        todo!()
    }
    pub fn info(&self) -> api::WorkspaceInfo {
        todo!()
    }
    pub fn overlay(&self) -> &Arc<Overlay> {
        todo!()
    }
    pub fn status(&self) -> Result<Vec<api::Change>> {
        todo!()
    }
    pub fn diff(&self, paths: &[RelPath]) -> Result<Vec<api::FileDiff>> {
        todo!()
    }
    pub fn commit(
        &self,
        req: &api::CommitRequest,
        progress: &dyn Fn(u64, u64),
    ) -> Result<api::CommitReport> {
        todo!()
    }
    pub fn discard(&self, paths: &[RelPath]) -> Result<api::DiscardReport> {
        todo!()
    }
    pub fn log(&self) -> Result<Vec<Record>> {
        todo!()
    }
    pub fn verify(&self) -> Result<api::VerifyReport> {
        todo!()
    }
    /// Deletes the workspace's state dir entirely (after discard; used by `down --discard`).
    pub fn destroy(state: &StateRoot, name: &str) -> Result<()> {
        todo!()
    }
}
