//! Where a byte of JSON text stands, without parsing it: inside a string (and just
//! after a backslash there) or not, and how many arrays and objects deep. Used to
//! split a JSON array file into its elements as the bytes stream past, and to
//! refuse request bodies nested too deep before serde recurses into them.

/// Feed it the text byte by byte with [`JsonNesting::push`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JsonNesting {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl JsonNesting {
    /// Accounts for the next byte.
    pub fn push(&mut self, b: u8) {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }

    /// Arrays and objects open around the next byte.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether the next byte is inside a string.
    pub fn in_string(&self) -> bool {
        self.in_string
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(text: &str) -> JsonNesting {
        let mut n = JsonNesting::default();
        text.bytes().for_each(|b| n.push(b));
        n
    }

    #[test]
    fn brackets_inside_strings_and_escaped_quotes_do_not_count() {
        assert_eq!(after(r#"{"a": [1, {"#).depth(), 3);
        assert_eq!(after(r#"{"a": "[[{{"#).depth(), 1);
        assert!(after(r#"{"a": "[[{{"#).in_string());
        assert_eq!(after(r#"{"a": "x\"]}", "b": ["#).depth(), 2);
        assert!(
            after(r#"{"a": "x\""#).in_string(),
            "an escaped quote does not close"
        );
        assert!(after(r#"{"a": "x\\"#).in_string());
        assert!(
            !after(r#"{"a": "x\\""#).in_string(),
            "after an escaped backslash the quote closes"
        );
        assert_eq!(after(r#"{"a": [1]}"#), JsonNesting::default());
        assert_eq!(after("]]]").depth(), 0, "never below zero");
    }
}
