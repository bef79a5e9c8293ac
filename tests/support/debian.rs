//! A minimal Debian image built offline from a `debootstrap --variant=minbase` root filesystem
//! (the stock distribution: `useradd`, `groupadd`, bash, no user but root and the system
//! accounts). The root filesystem is cached under `/var/cache/wsfs-test` (override with
//! `WSFS_TEST_DEBIAN_ROOTFS`), so only the first run on a machine downloads (about 2 minutes);
//! the image is imported once per dockerd as `wsfs-test-debian:bookworm-minbase`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::OnceCell;
use wsfs::controller::Controller;

/// The image tag.
pub const IMAGE: &str = "wsfs-test-debian:bookworm-minbase";
const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

static ONCE: OnceCell<Option<String>> = OnceCell::const_new();

fn rootfs() -> PathBuf {
    std::env::var_os("WSFS_TEST_DEBIAN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/wsfs-test/bookworm-rootfs"))
}

/// The Debian image, or `None` after a SKIP line (failing under CI) when it cannot be built:
/// no `debootstrap`, or the mirror (`WSFS_TEST_DEBIAN_MIRROR`) is unreachable.
pub async fn image(ctl: &Controller, test: &str) -> Option<String> {
    ONCE.get_or_init(|| async { build(ctl, test).await })
        .await
        .clone()
}

async fn build(ctl: &Controller, test: &str) -> Option<String> {
    if ctl.image_id(IMAGE).await.expect("inspect").is_some() {
        return Some(IMAGE.into());
    }
    let dir = rootfs();
    let parent = dir.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&parent).unwrap();
    // One builder per machine (test binaries run in parallel).
    let lock = std::fs::File::create(parent.join(".debootstrap.lock")).unwrap();
    while wsfs::sys::try_lock_exclusive(std::os::fd::AsFd::as_fd(&lock)).is_err() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !dir.join("usr/sbin/useradd").exists() {
        let have = Command::new("debootstrap")
            .arg("--version")
            .output()
            .is_ok();
        if !crate::prereq::require(test, "debootstrap (apt-get install debootstrap)", have) {
            return None;
        }
        let mirror =
            std::env::var("WSFS_TEST_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
        let tmp = parent.join(format!("{SUITE}-rootfs.tmp-{}", std::process::id()));
        let started = std::time::Instant::now();
        let out = Command::new("debootstrap")
            .args(["--variant=minbase", SUITE])
            .arg(&tmp)
            .arg(&mirror)
            .output()
            .expect("run debootstrap");
        let ok = out.status.success();
        if !ok {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        let why = format!(
            "a Debian root filesystem from debootstrap ({mirror}): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        if !crate::prereq::require(test, &why, ok) {
            return None;
        }
        eprintln!("debootstrap took {:?}", started.elapsed());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).unwrap();
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["--numeric-owner", "-c", "."])
        .output()
        .expect("tar the Debian root filesystem");
    assert!(
        tar.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let (repo, tag) = IMAGE.split_once(':').unwrap();
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    let body = bollard::body_full(bytes::Bytes::from(tar.stdout));
    let mut s = ctl.docker().create_image(Some(opts), Some(body), None);
    while let Some(item) = s.next().await {
        item.expect("docker import of the Debian image");
    }
    Some(IMAGE.into())
}
