use std::path::Path;

use super::*;

#[test]
fn empty_is_all_defaults() {
    let c = parse_str("", "t.toml").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.defaults.tool_config, vec!["~/.claude", "~/.claude.json"]);
    assert_eq!(c.defaults.network, "bridge");
    assert!(c.defaults.mount_tool_config);
    assert!(c.container.auto_user, "auto_user is on by default");
    assert!(!c.defaults.read_only);
}

#[test]
fn full_file_parses() {
    let text = r#"
[defaults]
image = "img:1"
persistent = true
network = "none"
memory = "4g"
cpus = 1.5
pids_limit = 256
read_only = true

[container]
code_user = "agent"
code_uid = 4242
code_gid = 4243
workspace_container_path = "/workspace"
auto_user = false

[mounts]
default = [{ host = "~/.config/tmux", container = "~/.config/tmux", readonly = true }]

[credentials]
env = { TOKEN = "abc", FROM = { from_env = "HOST_TOKEN" } }
files = { "~/.ssh/id_ed25519" = "~/.ssh/id_ed25519" }

[scripts]
post_start = "./setup.sh"
post_start_fatal = true
"#;
    let c = parse_str(text, "t.toml").unwrap();
    assert_eq!(c.defaults.image, "img:1");
    assert_eq!(c.defaults.cpus, Some(1.5));
    assert_eq!(c.container.code_uid, Some(4242));
    assert!(!c.container.auto_user && c.defaults.read_only);
    assert!(c.mounts.default[0].readonly);
    assert_eq!(c.credentials.env["TOKEN"], EnvValue::Value("abc".into()));
    assert_eq!(
        c.credentials.env["FROM"],
        EnvValue::FromEnv {
            from_env: "HOST_TOKEN".into()
        }
    );
    assert!(c.scripts.post_start_fatal);
    assert_eq!(
        parse_memory(c.defaults.memory.as_deref().unwrap()),
        Ok(4 << 30)
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = parse_str("[defaults]\nimage = \"x\"\nimgae = \"y\"\n", "/etc/c.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/etc/c.toml:3:"), "{err}");
    assert!(err.contains("imgae"), "{err}");
}

#[test]
fn unknown_section_is_an_error() {
    let err = parse_str("\n[defualts]\nimage = \"x\"\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.toml:2:"), "{err}");
    assert!(err.contains("defualts"), "{err}");
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let err = parse_str("[defaults]\n\npids_limit = \"many\"\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.toml:3:"), "{err}");
    assert!(err.contains("pids_limit"), "{err}");
    let err = parse_str("[container]\ncode_uid = -1\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("c.toml:2:") && err.contains("code_uid"),
        "{err}"
    );
}

#[test]
fn bad_memory_and_paths_are_refused() {
    let err = parse_str("[defaults]\nimage = \"i\"\nmemory = \"lots\"\n", "c")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c:3: key `defaults.memory`"), "{err}");
    assert!(parse_str("[container]\nworkspace_container_path = \"rel\"\n", "c").is_err());
    assert_eq!(parse_memory("512m"), Ok(512 << 20));
    assert_eq!(parse_memory("1GiB"), Ok(1 << 30));
    assert!(parse_memory("1k").is_err());
}

#[test]
fn project_overrides_user_and_flags_override_both() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("config.toml");
    std::fs::write(
        &user,
        "[defaults]\nimage = \"u\"\nnetwork = \"none\"\n[credentials]\nenv = { A = \"1\" }\n",
    )
    .unwrap();
    let project = dir.path().join("proj");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join(PROJECT_FILE), "[defaults]\nimage = \"p\"\n").unwrap();
    let mut c = load_files(Some(&user), Some(&project)).unwrap();
    assert_eq!(c.defaults.image, "p");
    assert_eq!(c.defaults.network, "none");
    assert_eq!(c.credentials.env.len(), 1);
    c.apply(&Overrides {
        image: Some("flag".into()),
        code_uid: Some(7),
        ..Default::default()
    });
    assert_eq!(c.defaults.image, "flag");
    assert_eq!(c.container.code_uid, Some(7));
    // A missing user file is fine.
    let c = load_files(Some(&dir.path().join("none.toml")), None).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn project_file_errors_name_the_project_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(PROJECT_FILE),
        "[scripts]\npost_stat = \"x\"\n",
    )
    .unwrap();
    let err = load_files(None, Some(dir.path())).unwrap_err().to_string();
    let want = format!("{}:2:", dir.path().join(PROJECT_FILE).display());
    assert!(err.starts_with(&want) && err.contains("post_stat"), "{err}");
}

#[test]
fn project_file_may_not_expose_host_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(PROJECT_FILE),
        "[defaults]\nimage = \"x\"\n[credentials]\nfiles = { \"/etc/shadow\" = \"/tmp/s\" }\n",
    )
    .unwrap();
    let err = load_files(None, Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains(":3:") && err.contains("credentials"), "{err}");
}

#[test]
fn project_file_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.toml");
    std::fs::write(&target, "").unwrap();
    let project = dir.path().join("p");
    std::fs::create_dir(&project).unwrap();
    std::os::unix::fs::symlink(&target, project.join(PROJECT_FILE)).unwrap();
    let err = load_files(None, Some(&project)).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
}

#[test]
fn tilde_and_passwd() {
    let home = Path::new("/home/a");
    assert_eq!(expand_tilde("~/.ssh/k", home), Path::new("/home/a/.ssh/k"));
    assert_eq!(expand_tilde("/abs", home), Path::new("/abs"));
    let e: Vec<_> =
        passwd_entries("root:x:0:0:r:/root:/bin/sh\nbad\nagent:x:4242:4242::/home/agent:/bin/sh\n")
            .collect();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].uid, 4242);
    assert_eq!(e[1].home, "/home/agent");
}

/// A project file that raises privileges is honoured only for the exact content the user
/// trusted (issue 14); one that only narrows needs no trust.
#[test]
fn raising_project_settings_need_trust_of_that_exact_file() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("config.toml");
    let project = dir.path().join("proj");
    std::fs::create_dir(&project).unwrap();
    let write = |text: &str| std::fs::write(project.join(PROJECT_FILE), text).unwrap();
    write("[defaults]\nnetwork = \"none\"\nmemory = \"512m\"\n");
    assert_eq!(
        load_files(Some(&user), Some(&project))
            .unwrap()
            .defaults
            .network,
        "none"
    );
    let raising = "[defaults]\nnetwork = \"host\"\n[scripts]\npost_start = \"./setup.sh\"\n";
    write(raising);
    let err = load_files(Some(&user), Some(&project))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("defaults.network = \"host\"")
            && err.contains("scripts.post_start = \"./setup.sh\"")
            && err.contains("wsfs trust"),
        "{err}"
    );
    let store = trust::store_path(&user);
    trust::trust(&store, &project, raising).unwrap();
    let c = load_files(Some(&user), Some(&project)).unwrap();
    assert_eq!(c.defaults.network, "host");
    // Any change to the file needs trusting again; so does uid 0.
    write("[defaults]\nnetwork = \"host\"\n[container]\ncode_uid = 0\n");
    let err = load_files(Some(&user), Some(&project))
        .unwrap_err()
        .to_string();
    assert!(err.contains("container.code_uid = 0"), "{err}");
    // Without a user config there is no trust store: refused.
    write(raising);
    assert!(load_files(None, Some(&project)).is_err());
}
