//! Text that came from elsewhere (a workspace, a config, a command's
//! stderr), made safe to print on a terminal: a control character or a
//! bidirectional override would otherwise be the terminal's to obey (set
//! the title, clear the screen, turn the rest of a line around).

use std::borrow::Cow;

/// True for what a terminal could take as an instruction.
fn dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| dangerous(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if dangerous(c) && !keep(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line: every control character, line breaks included, is written as
/// its escape (`\u{1b}`, `\n`).
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Lines: as [`one_line`], but line breaks and tabs stay.
pub fn lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(one_line("python3 -m http.server"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\u{1b}]0;pwned\u{7}b"), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(one_line("x\ny\r"), "x\\ny\\r");
        assert_eq!(lines("x\n\ty\u{1b}[2J"), "x\n\ty\\u{1b}[2J");
        assert_eq!(one_line("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(one_line("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(lines("ünïcödé ✓"), "ünïcödé ✓");
    }
}
