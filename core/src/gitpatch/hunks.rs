//! Unified hunks of text, split into lines at `\n` only (as git splits them; a lone `\r`
//! stays inside its line), with git's `\ No newline at end of file` marker.

use similar::DiffTag;

/// Lines of context around each change, as `git diff` uses by default.
const CONTEXT: usize = 3;

/// Appends the hunks turning `old` into `new` (nothing when they are equal).
pub(crate) fn write_hunks(out: &mut String, old: &str, new: &str) {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b);
    for group in similar::group_diff_ops(ops, CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_range),
            range(new_range)
        ));
        for op in &group {
            let (tag, o, n) = op.as_tag_tuple();
            match tag {
                DiffTag::Equal => lines(out, ' ', &a[o]),
                DiffTag::Delete => lines(out, '-', &a[o]),
                DiffTag::Insert => lines(out, '+', &b[n]),
                DiffTag::Replace => {
                    lines(out, '-', &a[o]);
                    lines(out, '+', &b[n]);
                }
            }
        }
    }
}

/// `start,len` of a hunk side (1-based; an empty side names the line before it; `,1` left out).
fn range(r: std::ops::Range<usize>) -> String {
    match r.len() {
        0 => format!("{},0", r.start),
        1 => format!("{}", r.start + 1),
        n => format!("{},{n}", r.start + 1),
    }
}

fn lines(out: &mut String, tag: char, lines: &[&str]) {
    for l in lines {
        out.push(tag);
        out.push_str(l);
        if !l.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::write_hunks;

    fn hunks(a: &str, b: &str) -> String {
        let mut s = String::new();
        write_hunks(&mut s, a, b);
        s
    }

    #[test]
    fn new_empty_and_unterminated_files() {
        assert_eq!(hunks("", "a\nb\n"), "@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(hunks("a\n", ""), "@@ -1 +0,0 @@\n-a\n");
        assert_eq!(
            hunks("x\n", "x\ny"),
            "@@ -1 +1,2 @@\n x\n+y\n\\ No newline at end of file\n"
        );
        assert_eq!(hunks("same\n", "same\n"), "");
    }

    #[test]
    fn a_lone_carriage_return_stays_inside_its_line() {
        assert_eq!(hunks("a\rb\n", "a\rc\n"), "@@ -1 +1 @@\n-a\rb\n+a\rc\n");
    }
}
