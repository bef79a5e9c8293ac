//! A walk through the core without FUSE: a workspace over a copy of a project, changes made
//! through the overlay the way the kernel would make them, then status, diff and commit.
//!
//! `cargo run --release --example walkthrough -- [PROJECT_DIR]` (default: a small generated demo).
//! The project is copied to a temporary directory first; your files are never touched.

use std::ffi::OsStr;
use std::path::PathBuf;

use wsfs::api::CommitRequest;
use wsfs::overlay::{Req, ROOT_INO};
use wsfs::state::StateRoot;
use wsfs::workspace::Workspace;

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let project = tmp.path().join("project");
    let src = match std::env::args_os().nth(1).map(PathBuf::from) {
        Some(src) => {
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(&project)
                .status()?;
            anyhow::ensure!(status.success(), "could not copy {}", src.display());
            src
        }
        None => {
            std::fs::create_dir_all(project.join("src"))?;
            std::fs::write(project.join("README.md"), "# demo\n")?;
            std::fs::write(project.join("src/main.rs"), "fn main() {}\n")?;
            PathBuf::from("a generated demo project")
        }
    };
    let state = StateRoot::new(tmp.path().join("state"));
    let t = std::time::Instant::now();
    let ws = Workspace::create(&state, "walkthrough", &project)?;
    println!(
        "workspace ready in {:?} over a copy of {}",
        t.elapsed(),
        src.display()
    );

    // What an agent would do: edit README.md, add a file, delete nothing.
    let ov = ws.overlay();
    let req = Req {
        uid: 0,
        gid: 0,
        pid: 0,
    };
    let readme = ov.lookup(ROOT_INO, OsStr::new("README.md"));
    if let Ok(attr) = readme {
        let fh = ov.open(&req, attr.ino, libc::O_WRONLY | libc::O_APPEND)?.fh;
        ov.write(fh, 0, b"\nEdited inside the workspace.\n")?;
        ov.release(fh)?;
    }
    let (_, opened) = ov.create(
        &req,
        ROOT_INO,
        OsStr::new("NOTES.txt"),
        0o644,
        0o022,
        libc::O_WRONLY,
    )?;
    ov.write(opened.fh, 0, b"written by the agent\n")?;
    ov.release(opened.fh)?;

    println!("\n$ wsfs status");
    for c in ws.status()? {
        println!("{} {}", c.kind.letter(), c.path);
    }
    println!("\n$ wsfs diff");
    for d in ws.diff(&[])? {
        print!(
            "{}",
            if d.binary {
                format!("Binary files differ: {}\n", d.change.path)
            } else {
                d.unified
            }
        );
    }
    println!("(the project copy is untouched until commit)");
    let report = ws.commit(&CommitRequest::default(), &|_, _| {})?;
    println!(
        "\n$ wsfs commit\napplied {} paths, {} conflicts",
        report.applied.len(),
        report.conflicts.len()
    );
    println!(
        "NOTES.txt in the project copy: {:?}",
        std::fs::read_to_string(project.join("NOTES.txt"))?
    );
    println!("journal verified: {:?}", ws.verify()?.chain_ok);
    Ok(())
}
