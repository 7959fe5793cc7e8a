//! Shortening text to a byte budget without splitting a character; bytes as hex.
//!
//! Every place that cuts a string to a length (raw text kept for a reject, a name
//! shortened to fit the file system, a value echoed in a message) goes through
//! [`cut`]: `String::truncate` and slicing panic when the cut falls inside a
//! multi-byte character, and one such panic in the import pipeline used to kill it.

/// Bytes as lower-case hex (hashes, random ids).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends `bytes` to `out` as lower-case hex, two digits a byte, without `format!`
/// (request ids and event ids are written on hot paths).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The longest prefix of `text` that is at most `max_bytes` long and ends on a
/// character boundary.
pub fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// [`cut`] in place.
pub fn cut_owned(mut text: String, max_bytes: usize) -> String {
    let end = cut(&text, max_bytes).len();
    text.truncate(end);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
        let mut out = String::from("evt_");
        push_hex(&mut out, &[0x00, 0xab, 0xff]);
        assert_eq!(out, "evt_00abff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn never_splits_a_character_and_keeps_what_fits() {
        let s = "aé€𝄞b";
        for max in 0..=s.len() + 2 {
            let c = cut(s, max);
            assert!(c.len() <= max, "{max}: {c:?}");
            assert!(s.starts_with(c));
            // Nothing that fits was dropped: the next character would overflow.
            if let Some(next) = s[c.len()..].chars().next() {
                assert!(c.len() + next.len_utf8() > max, "{max}: {c:?}");
            }
            assert_eq!(cut_owned(s.to_owned(), max), c);
        }
    }
}
