//! Docker test support: reaching dockerd (skip loudly, or fail under CI), and an offline test
//! image built from `busybox-static` with a user of the tests' choosing.
#![allow(dead_code)]

use std::path::Path;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::OnceCell;
use wsfs::controller::tar::{Meta, TarBuilder};
use wsfs::controller::Controller;

pub mod debian;

/// The test user in the image.
pub const AGENT: &str = "agent";
/// Its uid and gid.
pub const AGENT_UID: u32 = 4242;
/// Repository of the test image.
pub const IMAGE_REPO: &str = "wsfs-test-busybox";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
agent:x:4242:4242:wsfs test agent:/home/agent:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nagent:x:4242:\nnogroup:x:65534:\n";

/// Connects to dockerd, or returns `None` after a loud SKIP message. Under `CI` a missing
/// daemon is a failure, never a skip.
pub async fn docker(test: &str) -> Option<Controller> {
    match Controller::connect().await {
        Ok(c) => Some(c),
        Err(e) => {
            crate::prereq::require(test, &format!("a reachable Docker daemon ({e})"), false);
            None
        }
    }
}

static IMAGE: OnceCell<String> = OnceCell::const_new();

/// The test image tag, imported once (skipped when the tag already exists).
pub async fn test_image(ctl: &Controller) -> String {
    IMAGE
        .get_or_init(|| async { import_image(ctl, PASSWD, GROUP).await })
        .await
        .clone()
}

/// A busybox image like [`test_image`] with the given `/etc/passwd` and `/etc/group` (and a
/// home directory, owned by its user, for each passwd entry under `/home`). Imported once per
/// content (skipped when the tag already exists).
pub async fn busybox_image(ctl: &Controller, passwd: &str, group: &str) -> String {
    import_image(ctl, passwd, group).await
}

fn busybox() -> std::path::PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox not found: install busybox-static (the test image is built from it)");
}

async fn import_image(ctl: &Controller, passwd: &str, group: &str) -> String {
    let bb_path = busybox();
    let bb = std::fs::read(&bb_path).expect("read busybox");
    let mut h = blake3::Hasher::new();
    // v2: homes hold a `.profile`.
    h.update(b"v2")
        .update(&bb)
        .update(passwd.as_bytes())
        .update(group.as_bytes());
    let tag = h.finalize().to_hex()[..12].to_string();
    let image = format!("{IMAGE_REPO}:{tag}");
    if ctl.image_id(&image).await.expect("inspect").is_some() {
        return image;
    }
    let out = std::process::Command::new(&bb_path)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let root = Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
    };
    let mut t = TarBuilder::new();
    for d in ["bin", "etc", "root", "home", "proc", "sys", "dev"] {
        t.dir(d, root).unwrap();
    }
    t.dir(
        "tmp",
        Meta {
            mode: 0o1777,
            ..root
        },
    )
    .unwrap();
    for e in wsfs::config::passwd_entries(passwd) {
        if let Some(home) = e.home.strip_prefix("/home/") {
            let meta = Meta {
                uid: e.uid,
                gid: e.gid,
                ..root
            };
            t.dir(&format!("home/{home}"), meta).unwrap();
            t.file(
                &format!("home/{home}/.profile"),
                b"# from the image\n",
                Meta {
                    mode: 0o644,
                    ..meta
                },
            )
            .unwrap();
        }
    }
    t.file("bin/busybox", &bb, root).unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            t.symlink(&format!("bin/{applet}"), "busybox".as_ref(), root)
                .unwrap();
        }
    }
    t.file(
        "etc/passwd",
        passwd.as_bytes(),
        Meta {
            mode: 0o644,
            ..root
        },
    )
    .unwrap();
    t.file(
        "etc/group",
        group.as_bytes(),
        Meta {
            mode: 0o644,
            ..root
        },
    )
    .unwrap();
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(IMAGE_REPO)
        .tag(&tag)
        .build();
    let body = bollard::body_full(bytes::Bytes::from(t.finish().unwrap()));
    let mut s = ctl.docker().create_image(Some(opts), Some(body), None);
    while let Some(item) = s.next().await {
        item.expect("docker import of the test image");
    }
    assert!(
        ctl.image_id(&image).await.unwrap().is_some(),
        "imported {image}"
    );
    image
}
