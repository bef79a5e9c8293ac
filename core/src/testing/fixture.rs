//! [`TestWorkspace`]: a temporary host project, a temporary state directory and workspace "t".

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use crate::overlay::Overlay;
use crate::state::StateRoot;
use crate::workspace::Workspace;

/// The workspace name every fixture uses.
const NAME: &str = "t";

/// A host project with files and workspace "t" on it, in a state directory of its own. Both
/// directories are removed when it is dropped.
pub struct TestWorkspace {
    project: TempDir,
    state: TempDir,
    ws: Option<Arc<Workspace>>,
}

impl TestWorkspace {
    /// A project holding `files` (path, content; parent directories are created) and a fresh
    /// workspace on it.
    pub fn new(files: &[(&str, &str)]) -> TestWorkspace {
        let project = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let full = project.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&StateRoot::new(state.path()), NAME, project.path()).unwrap();
        TestWorkspace {
            project,
            state,
            ws: Some(ws),
        }
    }

    /// The open workspace. Panics after [`close`](Self::close).
    pub fn ws(&self) -> &Arc<Workspace> {
        self.ws.as_ref().expect("the workspace is closed")
    }

    /// The workspace's overlay.
    pub fn ov(&self) -> &Arc<Overlay> {
        self.ws().overlay()
    }

    /// Closes the workspace (this fixture's handle of it), as a daemon that stops does.
    pub fn close(&mut self) {
        self.ws = None;
    }

    /// Closes and reopens the workspace (what a daemon restart does).
    pub fn reopen(&mut self) {
        self.close();
        self.ws = Some(Workspace::open(&StateRoot::new(self.state.path()), NAME).unwrap());
    }

    /// The host project directory.
    pub fn project(&self) -> &Path {
        self.project.path()
    }

    /// The state root (the directory holding `workspaces/t`).
    pub fn state(&self) -> &Path {
        self.state.path()
    }

    /// `p` in the host project.
    pub fn host(&self, p: impl AsRef<Path>) -> PathBuf {
        self.project().join(p)
    }

    /// The content of `p` in the host project, `None` if it cannot be read.
    pub fn host_read(&self, p: impl AsRef<Path>) -> Option<Vec<u8>> {
        std::fs::read(self.host(p)).ok()
    }

    /// `p` in the workspace's upper layer.
    pub fn upper(&self, p: impl AsRef<Path>) -> PathBuf {
        StateRoot::new(self.state())
            .workspace_dir(NAME)
            .join("upper")
            .join(p)
    }
}
