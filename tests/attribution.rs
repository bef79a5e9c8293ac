//! Attribution on a real mount: every record names the process whose request made it (pid,
//! comm) and, for a process in a Docker container, the container's id; `wsfs log` and
//! `wsfs blame` show it. Needs root and /dev/fuse (and dockerd for the container test).

mod live;
mod prereq;
mod support;

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use live::{can_mount, Live};
use serde_json::Value;

/// busybox-static, copied under `name`: a process whose comm is `name` (the kernel takes it
/// from the executed file's name), running busybox's `sh` (from argv\[0\]).
fn renamed_shell(dir: &Path, name: &str) -> PathBuf {
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox-static is installed (see .ci/run)");
    let copy = dir.join(name);
    std::fs::copy(bb, &copy).unwrap();
    copy
}

/// The records of `wsfs --json blame w PATH`.
fn blame(live: &Live, path: &Path) -> Vec<Value> {
    let v = live.json([OsStr::new("blame"), OsStr::new("w"), path.as_os_str()]);
    v.as_array().unwrap().clone()
}

/// This thread's name (what the kernel reports as the comm of the requests it makes).
fn own_comm() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn log_and_blame_name_the_writing_process() {
    if !can_mount("log_and_blame_name_the_writing_process") {
        return;
    }
    let live = Live::new(&[("host.txt", "host\n")]);
    let mnt = live.mount();
    let sh = renamed_shell(live.root.path(), "attr-writer");
    // Builtins only: the shell itself (pid $$) creates and appends.
    let out = Command::new(&sh)
        .arg0("sh")
        .arg("-c")
        .arg("echo $$; echo one > new.txt; echo two >> host.txt")
        .current_dir(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    // This test's thread renames: its own pid and comm.
    std::fs::create_dir(mnt.join("d")).unwrap();
    std::fs::rename(mnt.join("new.txt"), mnt.join("d/moved.txt")).unwrap();
    let me = (u64::from(std::process::id()), own_comm());

    let by = |r: &Value| {
        (
            r["by"]["pid"].as_u64().unwrap(),
            r["by"]["comm"].to_string(),
        )
    };
    let shell = (pid, "\"attr-writer\"".to_string());
    let test = (me.0, format!("{:?}", me.1));

    let recs = blame(&live, Path::new("host.txt"));
    let ops: Vec<_> = recs.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert!(ops.contains(&"write"), "{recs:?}");
    for r in &recs {
        assert_eq!(by(r), shell, "{r}");
        assert!(r["by"].get("container").is_none(), "{r}");
    }

    // The rename's source and destination both list it; the file's earlier records (by the
    // shell) follow the source's name.
    let moved = blame(&live, Path::new("d/moved.txt"));
    let rename = moved.iter().find(|r| r["op"] == "rename").expect("rename");
    assert_eq!(by(rename), test, "{rename}");
    let new = blame(&live, Path::new("new.txt"));
    assert!(new.iter().any(|r| r["op"] == "rename"), "{new:?}");
    assert!(
        new.iter()
            .filter(|r| r["op"] != "rename")
            .all(|r| by(r) == shell),
        "{new:?}"
    );
    // A directory selects the records below it.
    let dir = blame(&live, Path::new("d"));
    assert!(dir.iter().any(|r| r["op"] == "mkdir" && by(r) == test));
    assert!(dir.iter().any(|r| r["op"] == "rename"));

    // The human form names comm and pid; commit bookkeeping has no process.
    live.ok(["commit", "w", "host.txt"]);
    let text = live.ok(["blame", "w", "host.txt"]);
    assert!(text.contains(&format!("[attr-writer {pid}]")), "{text}");
    assert!(
        text.contains("commit_begin") && text.contains("[wsfs]"),
        "{text}"
    );
    let log = live.json(["log", "w"]);
    for r in log.as_array().unwrap() {
        let control = r["op"].as_str().unwrap().starts_with("commit_");
        assert_eq!(r.get("by").is_none(), control, "{r}");
    }
}

/// A write from inside a container is attributed to the container's id.
#[tokio::test(flavor = "multi_thread")]
async fn a_container_writer_is_named_by_its_container_id() {
    if !can_mount("a_container_writer_is_named_by_its_container_id") {
        return;
    }
    let Some(ctl) = support::docker("a_container_writer_is_named_by_its_container_id").await else {
        return;
    };
    let image = support::test_image(&ctl).await;
    let mut live = Live::new(&[]);
    let config = live.root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    live.set_env("XDG_CONFIG_HOME", &config);
    let name = format!("attr-{}", std::process::id());
    let project = live.project.clone();
    let out = live.wsfs([
        OsStr::new("up"),
        project.as_os_str(),
        OsStr::new("--name"),
        OsStr::new(&name),
        OsStr::new("--image"),
        OsStr::new(&image),
    ]);
    assert!(out.status.success(), "{out:?}\n{}", live.log());
    let p = project.to_str().unwrap();
    let script = format!("echo $$; echo boxed > {p}/boxed.txt");
    let out = live.wsfs(["exec", &name, "--", "sh", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
    let id = ctl.status(&name).await.unwrap().expect("container").id;

    let v = live.json([
        OsStr::new("blame"),
        OsStr::new(&name),
        project.join("boxed.txt").as_os_str(),
    ]);
    let recs = v.as_array().unwrap();
    assert!(!recs.is_empty(), "{v}");
    for r in recs {
        assert_eq!(r["by"]["container"].as_str(), Some(id.as_str()), "{r}");
        assert_eq!(r["by"]["comm"], "sh", "{r}");
        assert!(r["by"]["pid"].as_u64().unwrap() > 1, "{r}");
    }
    let text = live.ok(["blame", &name, "boxed.txt"]);
    assert!(text.contains(&format!("container {}", &id[..12])), "{text}");
    live.ok(["down", &name]);
    live.ok(["remove", &name]);
}
