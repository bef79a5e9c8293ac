//! The trees the workloads run on, prepared once into a cache directory: the Linux source
//! (full mode) or a generated tree of the same shape (quick mode), each a git repository with a
//! small C project to build, plus the smaller "ready" subsets and the create-storm tarball.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::util::{cmd, list_files, remove_all, run, Rng};

/// Where the Debian `linux-source-6.1` package puts the tarball.
const LINUX_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// Directory (inside the tree) of the generated C project for the build workload.
pub const BUILD_DIR: &str = "wsfs-bench-build";
/// Seed of the generated tree and of the storm tarball.
const SEED: u64 = 0x5753_4653; // "WSFS"

/// What to prepare.
#[derive(Clone, Debug)]
pub struct TreeSpec {
    /// `None`: the Linux source; `Some(n)`: a generated tree of `n` files.
    pub generated_files: Option<usize>,
    /// Sizes of the smaller trees for the workspace-ready rows.
    pub ready_sizes: Vec<usize>,
    /// Files in the create-storm tarball.
    pub storm_files: usize,
    /// C files in the build project.
    pub build_units: usize,
}

impl TreeSpec {
    /// Cache key: one directory per distinct spec.
    fn key(&self) -> String {
        let base = match self.generated_files {
            None => "linux-6.1".to_string(),
            Some(n) => format!("gen-{n}"),
        };
        format!("{base}-s{}-b{}", self.storm_files, self.build_units)
    }
}

/// A prepared tree and its companions (all read-only for the workloads).
pub struct Trees {
    /// The tree (git repository), used as the lower layer.
    pub tree: PathBuf,
    /// Its regular files, relative, sorted (`.git` excluded).
    pub files: Vec<PathBuf>,
    /// Smaller trees for the workspace-ready rows: (file count, path); the full tree last.
    pub ready: Vec<(usize, PathBuf)>,
    /// A tarball of `storm_files` small files under one top directory `storm/`.
    pub storm_tar: PathBuf,
    /// Human description of the tree, for the report.
    pub description: String,
}

/// Prepares (or reuses) the trees for `spec` under `cache`.
pub fn prepare(spec: &TreeSpec, cache: &Path) -> Result<Trees> {
    let dir = cache.join(spec.key());
    let marker = dir.join(".complete");
    if !marker.exists() {
        remove_all(&dir)?;
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        eprintln!("workloads: preparing {} (once; cached)", dir.display());
        build_cache(spec, &dir)?;
        fs::write(&marker, "")?;
    }
    let tree = dir.join("tree");
    let files = list_files(&tree)?;
    let mut ready: Vec<(usize, PathBuf)> = spec
        .ready_sizes
        .iter()
        .filter(|&&n| n < files.len())
        .map(|&n| (n, dir.join(format!("ready-{n}"))))
        .collect();
    ready.push((files.len(), tree.clone()));
    let description = match spec.generated_files {
        None => format!(
            "Linux 6.1 source (Debian linux-source-6.1), {} files",
            files.len()
        ),
        Some(_) => format!(
            "generated tree (seed {SEED:#x}, Linux-like shape), {} files",
            files.len()
        ),
    };
    Ok(Trees {
        tree,
        files,
        ready,
        storm_tar: dir.join("storm.tar"),
        description,
    })
}

/// Builds everything the cache directory `dir` holds.
fn build_cache(spec: &TreeSpec, dir: &Path) -> Result<()> {
    let tree = dir.join("tree");
    match spec.generated_files {
        None => extract_linux(dir, &tree)?,
        Some(n) => generate_tree(&tree, n, SEED)?,
    }
    write_build_project(&tree.join(BUILD_DIR), spec.build_units)?;
    git_commit_all(&tree)?;
    let files = list_files(&tree)?;
    for &n in &spec.ready_sizes {
        if n < files.len() {
            link_subset(&tree, &files[..n], &dir.join(format!("ready-{n}")))?;
        }
    }
    make_storm_tar(dir, spec.storm_files)
}

/// Extracts the Linux source tarball into `tree`.
fn extract_linux(dir: &Path, tree: &Path) -> Result<()> {
    if !Path::new(LINUX_TARBALL).exists() {
        bail!("{LINUX_TARBALL} is missing: apt-get install -y linux-source-6.1 (or use WSFS_BENCH=quick)");
    }
    run(cmd(
        "tar",
        [
            "-xf".as_ref(),
            LINUX_TARBALL.as_ref(),
            "-C".as_ref(),
            dir.as_os_str(),
        ],
    ))?;
    let top = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("linux"))
        })
        .context("the linux-source tarball has no linux* top directory")?;
    fs::rename(&top, tree)
        .with_context(|| format!("renaming {} to {}", top.display(), tree.display()))
}

/// Commits the whole tree once (`git add -f -A`: Debian's linux `.gitignore` ignores `/*`).
fn git_commit_all(tree: &Path) -> Result<()> {
    let git = |args: &[&str]| {
        run(cmd("git", ["-C".as_ref(), tree.as_os_str()])
            .args([
                "-c",
                "user.name=wsfs-bench",
                "-c",
                "user.email=bench@localhost",
            ])
            .args(args))
    };
    git(&["init", "-q"])?;
    git(&["config", "gc.auto", "0"])?;
    git(&["add", "-f", "-A", "."])?;
    git(&["commit", "-q", "-m", "benchmark tree"])?;
    // One pack instead of a loose object per file (no delta search: fast, and the tree's
    // file count stays the tree's own).
    git(&["repack", "-a", "-d", "-q", "--window=0"])?;
    git(&["prune-packed"])?;
    // Refresh the index stat cache once, as a developer's checkout would have it.
    git(&["status", "--porcelain"])
}

/// A tree of the first files of `files` (hard links, same relative paths) at `dest`.
fn link_subset(src: &Path, files: &[PathBuf], dest: &Path) -> Result<()> {
    for rel in files {
        let to = dest.join(rel);
        if let Some(p) = to.parent() {
            fs::create_dir_all(p)?;
        }
        fs::hard_link(src.join(rel), &to)
            .with_context(|| format!("linking {} into {}", rel.display(), dest.display()))?;
    }
    Ok(())
}

/// Generates `n` files in a Linux-like shape: ten top directories, depth up to 7, most
/// directories small, file sizes log-uniform-ish from 200 B to 200 KB (median ≈ 6 KB).
pub fn generate_tree(root: &Path, n: usize, seed: u64) -> Result<()> {
    const TOPS: [&str; 10] = [
        "arch",
        "drivers",
        "fs",
        "include",
        "kernel",
        "lib",
        "net",
        "sound",
        "tools",
        "Documentation",
    ];
    let mut rng = Rng::new(seed);
    let mut dirs: Vec<(PathBuf, usize)> = TOPS.iter().map(|t| (PathBuf::from(t), 1)).collect();
    for (d, _) in &dirs {
        fs::create_dir_all(root.join(d))?;
    }
    let mut buf = String::new();
    for i in 0..n {
        if rng.unit() < 0.08 {
            let (parent, depth) = dirs[rng.below(dirs.len() as u64) as usize].clone();
            if depth < 7 {
                let d = parent.join(format!("sub{:04}", dirs.len()));
                fs::create_dir_all(root.join(&d))?;
                dirs.push((d, depth + 1));
            }
        }
        // Locality: most files land in one of the last few directories created.
        let back = (rng.unit().powi(3) * dirs.len() as f64) as usize;
        let dir = &dirs[dirs.len() - 1 - back.min(dirs.len() - 1)].0;
        let ext = ["c", "c", "c", "h", "h", "txt", "S", "rst"][rng.below(8) as usize];
        let size = file_size(&mut rng);
        fill_source(&mut buf, i, size, rng.below(5) == 0);
        let path = root.join(dir).join(format!("f{i:05}.{ext}"));
        fs::write(&path, &buf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A file size: 2% large (64 KB–1 MB), else the log of the size is triangular on [ln 200, ln 200k].
fn file_size(rng: &mut Rng) -> usize {
    if rng.below(50) == 0 {
        return 65_536 + rng.below(1_000_000) as usize;
    }
    let (lo, hi) = ((200f64).ln(), (200_000f64).ln());
    let t = (rng.unit() + rng.unit()) / 2.0;
    (lo + t * (hi - lo)).exp() as usize
}

/// C-looking text of about `size` bytes; `export` adds grep hits.
fn fill_source(buf: &mut String, id: usize, size: usize, export: bool) {
    buf.clear();
    let mut j = 0;
    while buf.len() < size {
        let _ = writeln!(
            buf,
            "static int fn_{id}_{j}(int x)\n{{\n\treturn x * {j} + {id};\n}}"
        );
        if export && j % 8 == 0 {
            let _ = writeln!(buf, "EXPORT_SYMBOL_GPL(fn_{id}_{j});");
        }
        j += 1;
    }
    buf.truncate(size);
}

/// A C project of `units` files plus a header and a Makefile (`make -j2`, `make clean`).
fn write_build_project(dir: &Path, units: usize) -> Result<()> {
    fs::create_dir_all(dir.join("src"))?;
    let mut h = String::from(
        "#pragma once\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n",
    );
    for u in 0..units {
        let _ = writeln!(h, "long unit_{u}(long n);");
    }
    fs::write(dir.join("bench.h"), h)?;
    for u in 0..units {
        let mut c = String::from("#include \"../bench.h\"\n");
        for k in 0..12 {
            let _ = writeln!(
                c,
                "static long helper_{k}(long n) {{ long s = 0; for (long i = 0; i < n; i++) {{ s += (i * {k}) ^ (s >> 3); if (s % 7 == {k} % 7) s += strlen(\"{k}\"); }} return s; }}"
            );
        }
        let _ = writeln!(c, "long unit_{u}(long n) {{ long s = 0;");
        for k in 0..12 {
            let _ = writeln!(c, "  s += helper_{k}(n + {k});");
        }
        c.push_str("  return s; }\n");
        fs::write(dir.join(format!("src/unit{u}.c")), c)?;
    }
    let mut main = String::from("#include \"bench.h\"\nint main(void) { long s = 0;\n");
    for u in 0..units {
        let _ = writeln!(main, "  s += unit_{u}(10);");
    }
    main.push_str("  printf(\"%ld\\n\", s); return 0; }\n");
    fs::write(dir.join("main.c"), main)?;
    let mk = "CFLAGS ?= -O2 -g -Wall\nSRCS := main.c $(wildcard src/*.c)\nOBJS := $(SRCS:.c=.o)\n\
              bench: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%.o: %.c bench.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\
              clean:\n\trm -f bench $(OBJS)\n.PHONY: clean\n";
    fs::write(dir.join("Makefile"), mk)?;
    Ok(())
}

/// `dir/storm.tar`: `n` small files (0–4 KiB) in directories of 100, under `storm/`.
fn make_storm_tar(dir: &Path, n: usize) -> Result<()> {
    let src = dir.join("storm-src");
    let mut rng = Rng::new(SEED ^ 0x5707);
    for i in 0..n {
        let d = src.join(format!("storm/d{:03}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&d)?;
        }
        let len = rng.below(4097) as usize;
        fs::write(d.join(format!("f{i:05}")), vec![b'a' + (i % 26) as u8; len])?;
    }
    run(
        cmd("tar", ["-cf".as_ref(), dir.join("storm.tar").as_os_str()])
            .arg("-C")
            .arg(&src)
            .arg("storm"),
    )?;
    remove_all(&src)
}
