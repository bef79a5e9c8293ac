//! The code user in any image: planned from the image's `/etc/passwd` and `/etc/group` before
//! the container is created, and made real (created, or its uid changed) as root in the
//! started container before anything else runs.
//!
//! A missing user is created with `useradd` (and its group with `groupadd`) when the image has
//! them, else by appending to `/etc/passwd`, `/etc/group` and `/etc/shadow`, which is what
//! busybox's `adduser` does. A user whose name exists at another uid gets the new uid and gid
//! by editing `/etc/passwd` (and its group's gid in `/etc/group`), as devcontainers'
//! `updateRemoteUserUID` does: `usermod -u` would walk the home into bind mounts (the
//! workspace) to re-own files. The home is re-owned with `find -xdev`, every mount pruned.

use std::path::{Path, PathBuf};

use super::image::ImageFacts;
use super::{exec::Io, Controller};
use crate::config::{passwd_entries, PasswdEntry};
use crate::{Error, Result};

/// What the container needs done to its user database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum UserAction {
    /// The image has the user at the configured uid: nothing.
    Keep,
    /// The name is missing: create the user.
    Create,
    /// The name exists at `old_uid`: give it the configured uid and gid.
    ChangeUid {
        /// The uid in the image.
        old_uid: u32,
    },
}

/// What happens to the code user's primary group (by gid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum GroupAction {
    /// A group with the gid exists (named so).
    Keep(String),
    /// No group has the gid: create one named like the user.
    Create(String),
    /// A group named like the user exists at another gid: give it the gid.
    Regid(String),
}

/// The code user as the container will have it, and how to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UserPlan {
    /// The passwd entry after the change (uid, gid, home, shell).
    pub entry: PasswdEntry,
    /// What to do.
    pub action: UserAction,
    /// The primary group.
    pub group: GroupAction,
}

/// Who the code runs as and where, as `up` knows it before looking at the image.
pub(super) struct Wanted<'a> {
    /// User name.
    pub name: &'a str,
    /// Uid.
    pub uid: u32,
    /// Gid.
    pub gid: u32,
    /// The home a created user gets: the host home when mirroring the host user, else
    /// `/home/NAME` (see [`created_home`]).
    pub home: PathBuf,
    /// `auto_user` from the configuration.
    pub auto: bool,
    /// The image reference, for messages.
    pub image: &'a str,
}

/// The home a created user gets: the host user's home when the workspace mirrors the host
/// path and the code user is the host user (same uid), so absolute paths in tool config
/// resolve; else `/home/NAME`.
pub(super) fn created_home(
    mirror: bool,
    code_uid: u32,
    host: &crate::config::HostUser,
    name: &str,
) -> PathBuf {
    let home = &host.home;
    if mirror && code_uid == host.uid && home.is_absolute() && home != Path::new("/") {
        home.clone()
    } else {
        PathBuf::from(format!("/home/{name}"))
    }
}

/// Decides what the container needs (pure: from the image's passwd and group texts).
pub(super) fn plan(w: &Wanted<'_>, facts: &ImageFacts) -> Result<UserPlan> {
    let (name, uid, gid, image) = (w.name, w.uid, w.gid, w.image);
    let fix = format!(
        "Set [container] auto_user = true (the default) to let wsfs create or change the user, \
         build an image with that user (e.g. `RUN useradd -u {uid} -m {name}` in its \
         Dockerfile), or set [container] code_user (and code_uid/code_gid) in the wsfs config \
         (or --user/--uid/--gid) to a user the image has"
    );
    let found = passwd_entries(&facts.passwd).find(|e| e.name == name);
    let action = match &found {
        Some(e) if e.uid == uid => {
            return Ok(UserPlan {
                entry: e.clone(),
                action: UserAction::Keep,
                group: GroupAction::Keep(String::new()),
            })
        }
        Some(e) if w.auto => UserAction::ChangeUid { old_uid: e.uid },
        Some(e) => {
            return Err(Error::Container(format!(
                "user {name} in image {image} has uid {}, but the configured code_uid is \
                 {uid}, and auto_user is off. {fix}",
                e.uid
            )))
        }
        None if w.auto => UserAction::Create,
        None => {
            return Err(Error::Container(format!(
                "user {name} does not exist in image {image} (no entry in its /etc/passwd), \
                 and auto_user is off. {fix}"
            )))
        }
    };
    let portable = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if !portable(name) {
        return Err(Error::Container(format!(
            "cannot add user {name:?} to image {image}: a user name for /etc/passwd is letters, \
             digits, '.', '_' and '-', not starting with '-'. Set [container] code_user \
             (--user) to such a name"
        )));
    }
    let home = w.home.to_string_lossy();
    if found.is_none() && home.contains([':', '\n']) {
        return Err(Error::Container(format!(
            "cannot add user {name} to image {image}: its home {home:?} contains ':' or a \
             newline, which /etc/passwd cannot hold; set [container] workspace_container_path \
             (the home is then /home/{name})"
        )));
    }
    let entry = match found {
        Some(e) => PasswdEntry {
            uid,
            gid,
            home: match e.home.trim_end_matches('/') {
                "" => "/".into(),
                h => h.into(),
            },
            ..e
        },
        None => PasswdEntry {
            name: name.to_string(),
            uid,
            gid,
            home: home.into_owned(),
            shell: if facts.has_bash {
                "/bin/bash"
            } else {
                "/bin/sh"
            }
            .into(),
        },
    };
    let groups: Vec<(&str, Option<u32>)> = facts
        .group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1).and_then(|g| g.parse().ok())))
        })
        .collect();
    let group = if let Some((n, _)) = groups.iter().find(|(_, g)| *g == Some(gid)) {
        GroupAction::Keep(n.to_string())
    } else if groups.iter().any(|(n, _)| *n == name) {
        GroupAction::Regid(name.to_string())
    } else {
        GroupAction::Create(name.to_string())
    };
    Ok(UserPlan {
        entry,
        action,
        group,
    })
}

/// The setup script, run as root with `sh -c SCRIPT wsfs-user ARGS…`. Arguments: action
/// (`create`/`change`), name, uid, gid, home, shell, group action (`keep`/`create`/`regid`),
/// group name, re-own (`1`/`0`), then the mount targets to leave alone (as `find -path`
/// patterns). Prints what it did on stdout; fails with a message on stderr.
const SETUP: &str = r#"
set -u
action=$1 name=$2 uid=$3 gid=$4 home=$5 shell=$6 gaction=$7 gname=$8 reown=$9
shift 9
has() { command -v "$1" >/dev/null 2>&1; }
die() { echo "$*" >&2; exit 1; }
# `test -w` is always true for root; opening for append is the real check.
writable() { ( true >> "$1" ) 2>/dev/null; }
for f in /etc/passwd /etc/group; do
  writable "$f" || die "$f is not writable in the container (read-only file system or mount)"
done
# Appends a line, first ending an unterminated last line.
append() {
  f=$1; shift
  if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi
  printf '%s\n' "$*" >> "$f" || die "cannot append to $f"
}
# Rewrites a colon file through awk, keeping its inode, owner and mode.
edit() {
  f=$1; shift
  has awk || die "the image has no awk to edit $f"
  { awk -F: -v OFS=: "$@" "$f" > "$f.wsfs-new" && cat "$f.wsfs-new" > "$f"; } \
    || die "cannot rewrite $f"
  rm -f "$f.wsfs-new"
}
case $gaction in
  create)
    if has groupadd; then groupadd -g "$gid" "$gname" || die "groupadd failed"
    else append /etc/group "$gname:x:$gid:"; fi ;;
  regid) edit /etc/group -v n="$gname" -v g="$gid" '$1==n{$3=g}1' ;;
esac
if [ "$action" = create ]; then
  if has useradd; then
    useradd -o -l -M -u "$uid" -g "$gid" -d "$home" -s "$shell" "$name" || die "useradd failed"
    how=useradd
  else
    append /etc/passwd "$name:x:$uid:$gid::$home:$shell"
    if [ -f /etc/shadow ] && writable /etc/shadow; then append /etc/shadow "$name:!::0:99999:7:::"; fi
    how="editing /etc/passwd"
  fi
  if [ "$reown" = 1 ]; then
    mkdir -p "$home" || die "cannot create the home directory $home"
    for f in /etc/skel/.[!.]* /etc/skel/..?* /etc/skel/*; do
      [ -e "$f" ] || continue
      t="$home/${f##*/}"
      [ -e "$t" ] || [ -L "$t" ] || cp -a "$f" "$t" || die "cannot copy $f into $home"
    done
  fi
else
  edit /etc/passwd -v n="$name" -v u="$uid" -v g="$gid" '$1==n{$3=u;$4=g}1'
  how="editing /etc/passwd"
fi
if [ "$reown" = 1 ]; then
  # find HOME -xdev ( -path M1 -o … -o -path NONE ) -prune -o -exec chown …: mounts untouched.
  for m in "$@"; do set -- "$@" -path "$m" -o; shift; done
  find "$home" -xdev \( "$@" -path /nonexistent-wsfs-none \) -prune -o \
    -exec chown -h "$uid:$gid" {} + || die "re-owning $home failed"
fi
echo "$how"
"#;

/// The `find -path` pattern matching exactly `path` (glob characters escaped).
fn find_pattern(path: &Path) -> String {
    let mut s = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

impl Controller {
    /// Creates the code user (or changes its uid) in the started container `id` as root.
    /// `mounts` are the container's mount targets (never re-owned). Returns a one-line
    /// account of what was done.
    pub(super) async fn ensure_user(
        &self,
        id: &str,
        image: &str,
        plan: &UserPlan,
        reown: bool,
        mounts: &[PathBuf],
    ) -> Result<String> {
        let e = &plan.entry;
        let (action, what) = match plan.action {
            UserAction::Keep => return Ok(String::new()),
            UserAction::Create => ("create", "creating"),
            UserAction::ChangeUid { .. } => ("change", "changing the uid of"),
        };
        let (gaction, gname) = match &plan.group {
            GroupAction::Keep(n) => ("keep", n),
            GroupAction::Create(n) => ("create", n),
            GroupAction::Regid(n) => ("regid", n),
        };
        let mut cmd: Vec<String> = vec![
            "/bin/sh".into(),
            "-c".into(),
            SETUP.into(),
            "wsfs-user".into(),
            action.into(),
            e.name.clone(),
            e.uid.to_string(),
            e.gid.to_string(),
            e.home.clone(),
            e.shell.clone(),
            gaction.into(),
            gname.clone(),
            if reown { "1" } else { "0" }.into(),
        ];
        cmd.extend(mounts.iter().map(|m| find_pattern(m)));
        let out = self
            .exec_in(
                id,
                &cmd,
                Some("0:0".into()),
                Some("/".into()),
                &[],
                &Io::Capture { stdin: Vec::new() },
                Some(false),
            )
            .await?;
        if out.exit_code != 0 {
            return Err(Error::Container(format!(
                "{what} user {} (uid {}) in the container of image {image} failed: {}. Use an \
                 image that has the user at uid {} and set [container] auto_user = false, or \
                 set code_user (--user) to a user the image has at that uid",
                e.name,
                e.uid,
                String::from_utf8_lossy(&out.stderr).trim(),
                e.uid
            )));
        }
        let how = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(match plan.action {
            UserAction::ChangeUid { old_uid } => format!(
                "changed the uid of user {} from {old_uid} to {}:{} in the container ({how}), \
                 home {}",
                e.name, e.uid, e.gid, e.home
            ),
            _ => format!(
                "created user {} ({}:{}, home {}, shell {}) in the container ({how})",
                e.name, e.uid, e.gid, e.home, e.shell
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nagent:x:4242:4242::/home/agent/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nagent:x:4242:\nusers:x:100:\n";

    fn facts(bash: bool) -> ImageFacts {
        ImageFacts {
            passwd: PASSWD.into(),
            group: GROUP.into(),
            has_bash: bash,
            home_exists: false,
        }
    }

    fn wanted(name: &str, uid: u32, gid: u32, auto: bool) -> Wanted<'_> {
        Wanted {
            name,
            uid,
            gid,
            home: PathBuf::from("/home/host-me"),
            auto,
            image: "img",
        }
    }

    #[test]
    fn existing_user_at_the_uid_is_kept() {
        let p = plan(&wanted("agent", 4242, 4242, false), &facts(false)).unwrap();
        assert_eq!(p.action, UserAction::Keep);
        assert_eq!(p.entry.home, "/home/agent/");
    }

    #[test]
    fn missing_user_is_created_at_the_host_home_with_the_image_shell() {
        let p = plan(&wanted("me", 1000, 100, true), &facts(true)).unwrap();
        assert_eq!(p.action, UserAction::Create);
        assert_eq!(
            (
                p.entry.uid,
                p.entry.gid,
                p.entry.home.as_str(),
                p.entry.shell.as_str()
            ),
            (1000, 100, "/home/host-me", "/bin/bash")
        );
        assert_eq!(p.group, GroupAction::Keep("users".into()));
        let p = plan(&wanted("me", 1000, 1000, true), &facts(false)).unwrap();
        assert_eq!(p.entry.shell, "/bin/sh");
        assert_eq!(p.group, GroupAction::Create("me".into()));
    }

    #[test]
    fn name_at_another_uid_is_changed_keeping_its_home() {
        let p = plan(&wanted("agent", 4243, 4243, true), &facts(false)).unwrap();
        assert_eq!(p.action, UserAction::ChangeUid { old_uid: 4242 });
        assert_eq!(p.entry.home, "/home/agent");
        assert_eq!((p.entry.uid, p.entry.gid), (4243, 4243));
        assert_eq!(p.group, GroupAction::Regid("agent".into()));
    }

    #[test]
    fn auto_user_off_keeps_the_strict_check() {
        let e = plan(&wanted("ghost", 1, 1, false), &facts(false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user ghost does not exist in image img") && e.contains("auto_user"),
            "{e}"
        );
        let e = plan(&wanted("agent", 1234, 1, false), &facts(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has uid 4242") && e.contains("1234"), "{e}");
    }

    #[test]
    fn created_home_mirrors_only_the_host_user() {
        let host = crate::config::HostUser {
            name: "me".into(),
            uid: 1000,
            gid: 1000,
            home: PathBuf::from("/home/me"),
        };
        assert_eq!(created_home(true, 1000, &host, "me"), Path::new("/home/me"));
        assert_eq!(
            created_home(false, 1000, &host, "me"),
            Path::new("/home/me")
        );
        assert_eq!(created_home(true, 4242, &host, "x"), Path::new("/home/x"));
        let root_home = crate::config::HostUser {
            home: "/".into(),
            ..host
        };
        assert_eq!(
            created_home(true, 1000, &root_home, "me"),
            Path::new("/home/me")
        );
    }

    #[test]
    fn names_and_homes_passwd_cannot_hold_are_refused() {
        let e = plan(&wanted("a:b", 1, 1, true), &facts(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("letters, digits"), "{e}");
        let mut w = wanted("me", 1, 1, true);
        w.home = PathBuf::from("/home/a:b");
        let e = plan(&w, &facts(false)).unwrap_err().to_string();
        assert!(e.contains("contains ':'"), "{e}");
    }

    #[test]
    fn find_patterns_escape_globs() {
        assert_eq!(find_pattern(Path::new("/a/b[1]*?")), "/a/b\\[1\\]\\*\\?");
    }
}
