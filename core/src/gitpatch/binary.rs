//! Git's binary patch format: `literal` blocks of zlib-deflated data in git's base85, one
//! line per 52 input bytes, each line led by its byte count (`A`-`Z` = 1-26, `a`-`z` = 27-52).

use std::io::Write;

/// Git's base85 alphabet (`base85.c`).
const ALPHABET: &[u8; 85] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";

/// Appends `literal <len>`, the encoded data, and the blank line that ends the block.
pub(crate) fn literal(out: &mut String, data: &[u8]) {
    // Git's default level (`core.compression` unset): Z_BEST_SPEED.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).expect("writing to memory");
    let deflated = z.finish().expect("writing to memory");
    out.push_str(&format!("literal {}\n", data.len()));
    for line in deflated.chunks(52) {
        let n = line.len() as u8;
        out.push(if n <= 26 { b'A' + n - 1 } else { b'a' + n - 27 } as char);
        encode85(out, line);
        out.push('\n');
    }
    out.push('\n');
}

/// Base85 of `data`, 5 characters per 4 bytes (big-endian), the last group zero-padded.
fn encode85(out: &mut String, data: &[u8]) {
    for group in data.chunks(4) {
        let mut word = [0u8; 4];
        word[..group.len()].copy_from_slice(group);
        let mut acc = u32::from_be_bytes(word);
        let mut chars = [0u8; 5];
        for c in chars.iter_mut().rev() {
            *c = ALPHABET[(acc % 85) as usize];
            acc /= 85;
        }
        out.extend(chars.iter().map(|&c| c as char));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base85_like_git() {
        // Git deflates at its default level, Z_BEST_SPEED: an empty blob is 78 01 03 00 00 00
        // 00 01, "HcmV?d00001" (the `literal 0` line of every binary patch that adds a file).
        let mut s = String::new();
        encode85(&mut s, &[0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        assert_eq!(s, "cmV?d00001");
        let mut s = String::new();
        encode85(&mut s, &[0, 0, 0, 0]);
        assert_eq!(s, "00000");
        let mut s = String::new();
        encode85(&mut s, &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(s, "|NsC0");
    }

    #[test]
    fn line_lengths() {
        let mut s = String::new();
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        literal(&mut s, &data);
        let mut lines = s.lines();
        assert_eq!(lines.next(), Some("literal 5000"));
        for l in lines.filter(|l| !l.is_empty()) {
            let n = match l.as_bytes()[0] {
                c @ b'A'..=b'Z' => (c - b'A' + 1) as usize,
                c => (c - b'a' + 27) as usize,
            };
            assert_eq!(l.len() - 1, n.div_ceil(4) * 5, "{l}");
        }
        assert!(s.ends_with("\n\n"));
    }
}
