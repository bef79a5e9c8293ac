//! Model test: random operation sequences run on the overlay and on a plain in-memory tree.
//! After every step the merged view equals the model; after commit the host equals the model;
//! after discard the merged view equals the original host tree again.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;
use wsfs_core::api::{CommitRequest, UndoRequest};
use wsfs_core::testing::*;

#[derive(Clone, Debug, PartialEq)]
enum E {
    File(Vec<u8>),
    Dir,
    Link(Vec<u8>),
}

type Model = BTreeMap<Vec<u8>, E>;

#[derive(Clone, Debug)]
enum Op {
    Write(usize, Vec<u8>),
    Append(usize, Vec<u8>),
    Unlink(usize),
    Mkdir(usize),
    Rmdir(usize),
    Rename(usize, usize),
    Symlink(usize),
    Truncate(usize),
}

const PATHS: &[&[u8]] = &[b"a", b"b", b"d", b"d/a", b"d/b", b"d/e", b"d/e/f", b"x\xff"];

fn parent(p: &[u8]) -> Option<&[u8]> {
    p.iter().rposition(|&c| c == b'/').map(|i| &p[..i])
}

fn parent_is_dir(m: &Model, p: &[u8]) -> bool {
    parent(p).is_none_or(|pp| m.get(pp) == Some(&E::Dir))
}

fn children(m: &Model, p: &[u8]) -> bool {
    m.keys()
        .any(|k| k.len() > p.len() && k.starts_with(p) && k[p.len()] == b'/')
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let i = 0..PATHS.len();
    let data = proptest::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (i.clone(), data.clone()).prop_map(|(i, d)| Op::Write(i, d)),
        (i.clone(), data).prop_map(|(i, d)| Op::Append(i, d)),
        i.clone().prop_map(Op::Unlink),
        i.clone().prop_map(Op::Mkdir),
        i.clone().prop_map(Op::Rmdir),
        (i.clone(), i.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        i.clone().prop_map(Op::Symlink),
        i.prop_map(Op::Truncate),
    ]
}

/// Applies `op` to the model if valid; returns whether it was.
fn model_apply(m: &mut Model, op: &Op) -> bool {
    match op {
        Op::Write(i, d) => {
            let p = PATHS[*i].to_vec();
            match m.get(&p) {
                Some(E::File(_)) | None if parent_is_dir(m, &p) => {
                    m.insert(p, E::File(d.clone()));
                    true
                }
                _ => false,
            }
        }
        Op::Append(i, d) => match m.get_mut(PATHS[*i]) {
            Some(E::File(c)) => {
                c.extend_from_slice(d);
                true
            }
            _ => false,
        },
        Op::Truncate(i) => match m.get_mut(PATHS[*i]) {
            Some(E::File(c)) => {
                c.truncate(c.len() / 2);
                true
            }
            _ => false,
        },
        Op::Unlink(i) => match m.get(PATHS[*i]) {
            Some(E::File(_)) | Some(E::Link(_)) => {
                m.remove(PATHS[*i]);
                true
            }
            _ => false,
        },
        Op::Mkdir(i) | Op::Symlink(i) => {
            let p = PATHS[*i].to_vec();
            if m.contains_key(&p) || !parent_is_dir(m, &p) {
                return false;
            }
            let e = if matches!(op, Op::Mkdir(_)) {
                E::Dir
            } else {
                E::Link(b"target".to_vec())
            };
            m.insert(p, e);
            true
        }
        Op::Rmdir(i) => {
            let p = PATHS[*i];
            if m.get(p) == Some(&E::Dir) && !children(m, p) {
                m.remove(p);
                true
            } else {
                false
            }
        }
        Op::Rename(a, b) => {
            let (pa, pb) = (PATHS[*a], PATHS[*b]);
            let Some(src) = m.get(pa).cloned() else {
                return false;
            };
            if pa == pb
                || pb.starts_with(pa) && pb.get(pa.len()) == Some(&b'/')
                || !parent_is_dir(m, pb)
            {
                return false;
            }
            match (m.get(pb), &src) {
                (None, _) => {}
                (Some(E::Dir), E::Dir) if !children(m, pb) => {}
                (Some(E::File(_) | E::Link(_)), E::File(_) | E::Link(_)) => {}
                _ => return false,
            }
            let moved: Vec<(Vec<u8>, E)> = m
                .iter()
                .filter(|(k, _)| {
                    k.as_slice() == pa || (k.starts_with(pa) && k.get(pa.len()) == Some(&b'/'))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, _) in &moved {
                m.remove(k);
            }
            m.remove(pb);
            for (k, v) in moved {
                let mut nk = pb.to_vec();
                nk.extend_from_slice(&k[pa.len()..]);
                m.insert(nk, v);
            }
            true
        }
    }
}

fn overlay_apply(f: &TestWorkspace, op: &Op) {
    let ov = f.ov();
    match op {
        Op::Write(i, d) => write(ov, PATHS[*i], d),
        Op::Append(i, d) => append(ov, PATHS[*i], d),
        Op::Truncate(i) => {
            let ino = ino(ov, PATHS[*i]).unwrap();
            let size = ov.getattr(ino, None).unwrap().size / 2;
            ov.setattr(
                &REQ,
                ino,
                &wsfs_core::overlay::SetAttr {
                    size: Some(size),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        Op::Unlink(i) => unlink(ov, PATHS[*i]).unwrap(),
        Op::Mkdir(i) => drop(mkdir(ov, PATHS[*i]).unwrap()),
        Op::Symlink(i) => drop(symlink(ov, PATHS[*i], b"target").unwrap()),
        Op::Rmdir(i) => rmdir(ov, PATHS[*i]).unwrap(),
        Op::Rename(a, b) => rename(ov, PATHS[*a], PATHS[*b], 0).unwrap(),
    }
}

/// The merged view as a model.
fn view(f: &TestWorkspace) -> Model {
    let mut m = Model::new();
    let mut stack = vec![Vec::new()];
    while let Some(dir) = stack.pop() {
        for name in list(f.ov(), &dir) {
            let mut p = dir.clone();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            let attr = stat(f.ov(), &p).unwrap();
            let e = match attr.kind {
                wsfs_core::overlay::Kind::Dir => {
                    stack.push(p.clone());
                    E::Dir
                }
                wsfs_core::overlay::Kind::Symlink => {
                    use std::os::unix::ffi::OsStrExt;
                    E::Link(f.ov().readlink(attr.ino).unwrap().as_bytes().to_vec())
                }
                _ => E::File(read(f.ov(), &p).unwrap()),
            };
            m.insert(p, e);
        }
    }
    m
}

fn host_model(f: &TestWorkspace) -> Model {
    tree(f.project())
        .into_iter()
        .map(|(k, v)| {
            let e = if v == b"<dir>" {
                E::Dir
            } else if let Some(t) = v.strip_prefix(b"-> ") {
                E::Link(t.to_vec())
            } else {
                E::File(v)
            };
            (k, e)
        })
        .collect()
}

fn run(ops: Vec<Op>, commit: bool) {
    let f = TestWorkspace::new(&[("a", "host a"), ("d/a", "host d/a"), ("d/e/f", "host f")]);
    let original = host_model(&f);
    let mut model = original.clone();
    for op in &ops {
        if model_apply(&mut model, op) {
            overlay_apply(&f, op);
        }
        assert_eq!(view(&f), model, "after {op:?}");
        assert_eq!(host_model(&f), original, "host untouched before commit");
    }
    if commit {
        let r = f
            .ws()
            .commit(&CommitRequest::default(), &|_, _| {})
            .unwrap();
        assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
        assert_eq!(
            host_model(&f),
            model,
            "host equals the model after commit; ops {ops:?}"
        );
        assert!(f.ws().status().unwrap().is_empty());
        assert_eq!(view(&f), model);
    } else {
        f.ws().discard(&[]).unwrap();
        assert_eq!(view(&f), original, "discard restores the host view");
        assert_eq!(host_model(&f), original);
    }
}

/// `ops`, a commit, `later` (the agent works on), then an undo of the commit: the host is
/// byte for byte what it was before the commit, the view still the agent's, and committing
/// again applies the agent's work.
fn run_commit_undo(ops: Vec<Op>, later: Vec<Op>) {
    let f = TestWorkspace::new(&[("a", "host a"), ("d/a", "host d/a"), ("d/e/f", "host f")]);
    let original = host_model(&f);
    let mut model = original.clone();
    for op in &ops {
        if model_apply(&mut model, op) {
            overlay_apply(&f, op);
        }
    }
    let r = f
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap();
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    assert_eq!(host_model(&f), model, "host after commit; ops {ops:?}");
    for op in &later {
        if model_apply(&mut model, op) {
            overlay_apply(&f, op);
        }
    }
    let u = f.ws().undo(&UndoRequest::default());
    if r.id.is_empty() {
        // Nothing was committed: nothing to undo.
        assert!(u.is_err(), "undo without a commit: {u:?}");
    } else {
        let u = u.unwrap();
        assert!(u.conflicts.is_empty(), "{:?}", u.conflicts);
        assert_eq!(u.commit, r.id);
    }
    assert_eq!(
        host_model(&f),
        original,
        "host after undo equals the host before the commit; ops {ops:?}, later {later:?}"
    );
    assert_eq!(
        view(&f),
        model,
        "the view keeps the agent's version after undo"
    );
    assert_eq!(f.ws().status().unwrap().is_empty(), model == original);
    let again = f.ws().undo(&UndoRequest::default());
    assert!(again.is_err(), "a commit is undone once: {again:?}");
    let r = f
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap();
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    assert_eq!(
        host_model(&f),
        model,
        "committing again applies the agent's work"
    );
    assert!(f.ws().verify().unwrap().problems.is_empty());
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    // Quick in CI (48 cases); long mode: PROPTEST_CASES=2000 cargo test --test model
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn merged_view_follows_the_model_and_commit_reproduces_it(ops in proptest::collection::vec(op_strategy(), 1..24)) {
        run(ops, true);
    }

    #[test]
    fn undo_puts_the_host_back_as_before_the_commit(
        ops in proptest::collection::vec(op_strategy(), 1..20),
        later in proptest::collection::vec(op_strategy(), 0..6),
    ) {
        run_commit_undo(ops, later);
    }

    #[test]
    fn discard_restores_the_original(ops in proptest::collection::vec(op_strategy(), 1..16)) {
        run(ops, false);
    }
}

/// Host files the host may edit while the workspace works.
const HOST_FILES: &[&[u8]] = &[b"a", b"d/a", b"d/e/f"];

#[derive(Clone, Debug)]
enum Step {
    Overlay(Op),
    HostEdit(usize, u8),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => op_strategy().prop_map(Step::Overlay),
        1 => (0..HOST_FILES.len(), any::<u8>()).prop_map(|(i, n)| Step::HostEdit(i, n)),
    ]
}

/// Paths an overlay operation touches (before it is applied to the model).
fn touched_by(m: &Model, op: &Op) -> Vec<Vec<u8>> {
    match op {
        Op::Rename(a, b) => {
            let (pa, pb) = (PATHS[*a], PATHS[*b]);
            let mut out = vec![pa.to_vec(), pb.to_vec()];
            for k in m.keys() {
                if k.starts_with(pa) && k.get(pa.len()) == Some(&b'/') {
                    out.push(k.clone());
                    let mut nk = pb.to_vec();
                    nk.extend_from_slice(&k[pa.len()..]);
                    out.push(nk);
                }
            }
            out
        }
        Op::Write(i, _)
        | Op::Append(i, _)
        | Op::Truncate(i)
        | Op::Unlink(i)
        | Op::Mkdir(i)
        | Op::Rmdir(i)
        | Op::Symlink(i) => {
            vec![PATHS[*i].to_vec()]
        }
    }
}

fn run_with_host_edits(steps: Vec<Step>) {
    let f = TestWorkspace::new(&[("a", "host a"), ("d/a", "host d/a"), ("d/e/f", "host f")]);
    let mut model = host_model(&f);
    // First-touch base of each path the overlay touched: the host's content then.
    let mut base: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    let mut edited_after_touch = std::collections::BTreeSet::new();
    for step in &steps {
        match step {
            Step::Overlay(op) => {
                let touched = touched_by(&model, op);
                if model_apply(&mut model, op) {
                    for p in touched {
                        base.entry(p.clone()).or_insert_with(|| {
                            std::fs::read(f.host(std::ffi::OsStr::from_bytes(&p))).ok()
                        });
                    }
                    overlay_apply(&f, op);
                }
            }
            Step::HostEdit(i, n) => {
                let p = HOST_FILES[*i];
                let content = format!("host edit {n}").into_bytes();
                std::fs::write(f.host(std::ffi::OsStr::from_bytes(p)), &content).unwrap();
                if base.contains_key(p) {
                    edited_after_touch.insert(p.to_vec());
                } else {
                    model.insert(p.to_vec(), E::File(content));
                }
            }
        }
        assert_eq!(view(&f), model, "after {step:?}");
    }
    // Conflicts exactly where the host changed a path after the workspace based a change on it.
    let expected: Vec<Vec<u8>> = edited_after_touch
        .into_iter()
        .filter(|p| {
            let b = base[p].clone().map(E::File);
            model.get(p).cloned() != b
        })
        .collect();
    let before = host_model(&f);
    let r = f
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap();
    let mut got: Vec<Vec<u8>> = r
        .conflicts
        .iter()
        .map(|c| c.path.as_bytes().to_vec())
        .collect();
    got.sort();
    assert_eq!(got, expected, "conflicts; steps {steps:?}");
    if !expected.is_empty() {
        assert_eq!(host_model(&f), before, "a refused commit applies nothing");
        let forced = CommitRequest {
            force: true,
            ..Default::default()
        };
        let r = f.ws().commit(&forced, &|_, _| {}).unwrap();
        assert!(r.conflicts.is_empty());
    }
    // Paths the workspace touched but left unchanged leave the overlay at commit: the host's
    // later edit shows again.
    for p in HOST_FILES {
        let touched_unchanged = base
            .get(*p)
            .is_some_and(|b| model.get(*p).cloned() == b.clone().map(E::File));
        if touched_unchanged {
            if let Ok(c) = std::fs::read(f.host(std::ffi::OsStr::from_bytes(p))) {
                model.insert(p.to_vec(), E::File(c));
            }
        }
    }
    assert_eq!(
        host_model(&f),
        model,
        "host equals the model after commit; steps {steps:?}"
    );
    assert_eq!(view(&f), model, "the view equals the host after commit");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn host_edits_conflict_exactly_where_the_model_says(steps in proptest::collection::vec(step_strategy(), 1..24)) {
        run_with_host_edits(steps);
    }
}

#[derive(Clone, Debug)]
enum TimeStep {
    Overlay(Op),
    Checkpoint,
    /// Restore the checkpoint of this index (modulo those taken so far).
    Restore(usize),
    /// Restore only the paths at or below this one.
    RestorePath(usize, usize),
}

fn time_step_strategy() -> impl Strategy<Value = TimeStep> {
    prop_oneof![
        6 => op_strategy().prop_map(TimeStep::Overlay),
        2 => Just(TimeStep::Checkpoint),
        2 => any::<usize>().prop_map(TimeStep::Restore),
        1 => (any::<usize>(), 0..PATHS.len()).prop_map(|(k, i)| TimeStep::RestorePath(k, i)),
    ]
}

/// The model with the entries at or below `p` taken from `from` (the rest kept).
fn splice(now: &Model, from: &Model, p: &[u8]) -> Model {
    let under = |k: &[u8]| k == p || (k.starts_with(p) && k.get(p.len()) == Some(&b'/'));
    let mut out: Model = now
        .iter()
        .filter(|(k, _)| !under(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(
        from.iter()
            .filter(|(k, _)| under(k))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out
}

/// Checkpoints and restores among random changes: after a restore the merged view equals the
/// model at that checkpoint (or, for a restore of one path, the model with that path's subtree
/// taken from it); restoring a state equal to the host leaves no change behind; commit after
/// all of it reproduces the model on the host.
fn run_with_checkpoints(steps: Vec<TimeStep>) {
    let f = TestWorkspace::new(&[("a", "host a"), ("d/a", "host d/a"), ("d/e/f", "host f")]);
    let original = host_model(&f);
    let mut model = original.clone();
    let mut saved: Vec<(String, Model)> = Vec::new();
    for step in &steps {
        match step {
            TimeStep::Overlay(op) if model_apply(&mut model, op) => overlay_apply(&f, op),
            TimeStep::Checkpoint => {
                let info = f.ws().checkpoint("model").unwrap();
                saved.push((info.id, model.clone()));
            }
            TimeStep::Restore(k) | TimeStep::RestorePath(k, _) if !saved.is_empty() => {
                let (id, at) = saved[k % saved.len()].clone();
                let paths = match step {
                    TimeStep::RestorePath(_, i) => vec![p(PATHS[*i])],
                    _ => vec![],
                };
                let want = match step {
                    TimeStep::RestorePath(_, i) => splice(&model, &at, PATHS[*i]),
                    _ => at.clone(),
                };
                // A one-path restore is only a consistent tree when the parent is a directory
                // in both states.
                let parent_ok = paths.first().is_none_or(|p| {
                    let pp = parent(p.as_bytes());
                    pp.is_none_or(|pp| {
                        model.get(pp) == Some(&E::Dir) && at.get(pp) == Some(&E::Dir)
                    })
                });
                if !parent_ok {
                    continue;
                }
                let report = f
                    .ws()
                    .restore(&wsfs_core::api::RestoreRequest {
                        checkpoint: id.clone(),
                        paths,
                    })
                    .unwrap();
                // The state before the restore is a checkpoint too.
                saved.push((report.saved, model.clone()));
                model = want;
                if model == original {
                    assert!(
                        f.ws().status().unwrap().is_empty(),
                        "nothing pending after a restore to the host's state; steps {steps:?}"
                    );
                    assert!(
                        f.ov().changes().is_empty(),
                        "no change left equal to the host; steps {steps:?}"
                    );
                }
            }
            _ => {}
        }
        assert_eq!(view(&f), model, "after {step:?}; steps {steps:?}");
    }
    let r = f
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap();
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    assert_eq!(
        host_model(&f),
        model,
        "commit after restores; steps {steps:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn restore_returns_the_view_to_the_checkpoint(steps in proptest::collection::vec(time_step_strategy(), 1..32)) {
        run_with_checkpoints(steps);
    }
}
