//! Path names as git writes them in patches (`core.quotePath` default): C-style quoting in
//! double quotes, with octal escapes for control characters and every byte of 0x80 and above.

/// `prefix` + `path`, quoted when any byte needs it (then the whole name is quoted).
pub(crate) fn quoted(prefix: &str, path: &[u8]) -> String {
    let mut name = prefix.as_bytes().to_vec();
    name.extend_from_slice(path);
    if !name.iter().any(|&b| needs_quote(b)) {
        return String::from_utf8(name).expect("only ASCII bytes are left unquoted");
    }
    let mut out = String::from("\"");
    for &b in &name {
        match b {
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b if needs_quote(b) => out.push_str(&format!("\\{b:03o}")),
            b => out.push(b as char),
        }
    }
    out.push('"');
    out
}

fn needs_quote(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b >= 0x80 || b == b'"' || b == b'\\'
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn quotes_like_git() {
        assert_eq!(quoted("a/", b"plain name.txt"), "a/plain name.txt");
        assert_eq!(quoted("a/", b"tab\there"), "\"a/tab\\there\"");
        assert_eq!(quoted("", b"nl\nq\"b\\"), "\"nl\\nq\\\"b\\\\\"");
        assert_eq!(quoted("b/", "caf\u{e9}".as_bytes()), "\"b/caf\\303\\251\"");
        assert_eq!(quoted("", b"\xff\x01\x7f"), "\"\\377\\001\\177\"");
    }
}
