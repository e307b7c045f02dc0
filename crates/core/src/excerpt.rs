//! Untrusted text made inert: what a receiver answered is quoted in log lines, the store's
//! `last_error` and Temporal failure messages only as a short excerpt in which no character can
//! end a line, move the cursor, reorder text or hide what follows.
//!
//! Two views, both pure:
//! - [`excerpt`] turns a raw response body into the one form that is ever kept: at most
//!   [`EXCERPT_BODY_LIMIT`] bytes of it, every control and format character escaped (and `\`
//!   too, so an escape the receiver wrote cannot pass for one of ours), a `…(+N bytes)` marker
//!   when cut.
//! - [`inert`] is the safety net where text is printed: it escapes control and format
//!   characters and caps the length, and leaves an [`excerpt`] exactly as it is.
//!
//! [`scrub`] runs before either: it blanks out values this process sent (the Bearer key, the
//! signature), so a receiver that echoes request headers cannot get them into our logs.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// At most this much of a body is quoted: enough to read an error page's first line.
pub const EXCERPT_BODY_LIMIT: usize = 256;
/// Logs quote at most 1 KiB of a body (the design's bound), escapes and marker included.
pub const QUOTE_LIMIT: usize = 1024;
/// Room kept for the `…(+N bytes)` marker: `…` is 3 bytes, a usize at most 20 digits.
const MARKER_ROOM: usize = 32;
/// The escaped text before the marker; escapes can make it up to 6 times the body bytes.
const TEXT_LIMIT: usize = QUOTE_LIMIT - MARKER_ROOM;
/// Stands in for a value of ours that a receiver sent back.
pub const REDACTED: &str = "[REDACTED]";

/// How much a character is escaped. `\` is escaped in excerpts (so `\n` in one is always our
/// escape) but not by [`inert`], which must leave an excerpt unchanged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backslash {
    Escape,
    Keep,
}

/// The form of a response body that may be stored and logged; see the module documentation.
/// Invalid UTF-8 bytes show as `\xNN`.
pub fn excerpt(body: &[u8]) -> String {
    let mut out = String::new();
    let mut shown = 0;
    'body: for chunk in body.utf8_chunks() {
        for c in chunk.valid().chars() {
            let before = out.len();
            push_escaped(&mut out, c, Backslash::Escape);
            if shown + c.len_utf8() > EXCERPT_BODY_LIMIT || out.len() > TEXT_LIMIT {
                out.truncate(before);
                break 'body;
            }
            shown += c.len_utf8();
        }
        for byte in chunk.invalid() {
            if shown + 1 > EXCERPT_BODY_LIMIT || out.len() + 4 > TEXT_LIMIT {
                break 'body;
            }
            let _ = write!(out, "\\x{byte:02x}");
            shown += 1;
        }
    }
    if shown < body.len() {
        push_marker(&mut out, body.len() - shown);
    }
    out
}

/// Prints `text` with control and format characters escaped and at most [`QUOTE_LIMIT`] bytes
/// long: for any text that may not have gone through [`excerpt`]. An excerpt prints unchanged.
pub fn inert(text: &str) -> Inert<'_> {
    Inert(text)
}

/// See [`inert`].
#[derive(Clone, Copy)]
pub struct Inert<'a>(&'a str);

impl fmt::Display for Inert<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fits = escaped_len(self.0) <= QUOTE_LIMIT;
        let mut written = 0;
        let mut buffer = String::new();
        for (at, c) in self.0.char_indices() {
            buffer.clear();
            push_escaped(&mut buffer, c, Backslash::Keep);
            if !fits && written + buffer.len() > TEXT_LIMIT {
                let mut marker = String::new();
                push_marker(&mut marker, self.0.len() - at);
                return f.write_str(&marker);
            }
            f.write_str(&buffer)?;
            written += buffer.len();
        }
        Ok(())
    }
}

/// Quoted, with `"` escaped: in a `key=value` log line the text cannot pass for more fields.
impl fmt::Debug for Inert<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.to_string().chars() {
            if c == '"' {
                f.write_str("\\\"")?;
            } else {
                f.write_char(c)?;
            }
        }
        f.write_char('"')
    }
}

/// `body` with every occurrence of each of `secrets` replaced by [`REDACTED`]. Borrowed when
/// there was nothing to replace (the usual case). Empty secrets are ignored.
pub fn scrub<'a>(body: &'a [u8], secrets: &[&[u8]]) -> Cow<'a, [u8]> {
    let mut body = Cow::Borrowed(body);
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        if let Some(replaced) = replace_all(&body, secret, REDACTED.as_bytes()) {
            body = Cow::Owned(replaced);
        }
    }
    body
}

/// `None` when `needle` does not occur in `haystack`.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let first = find(haystack, needle)?;
    let mut out = Vec::with_capacity(haystack.len());
    out.extend_from_slice(&haystack[..first]);
    out.extend_from_slice(with);
    let mut rest = &haystack[first + needle.len()..];
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    Some(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn push_marker(out: &mut String, hidden: usize) {
    let _ = write!(out, "…(+{hidden} bytes)");
}

fn escaped_len(text: &str) -> usize {
    let mut buffer = String::new();
    text.chars()
        .map(|c| {
            buffer.clear();
            push_escaped(&mut buffer, c, Backslash::Keep);
            buffer.len()
        })
        .sum()
}

fn push_escaped(out: &mut String, c: char, backslash: Backslash) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' if backslash == Backslash::Escape => out.push_str("\\\\"),
        c if needs_escape(c) => {
            let _ = write!(out, "{}", c.escape_unicode());
        }
        c => out.push(c),
    }
}

/// Characters that act instead of showing: C0/C1 controls (newlines, ESC sequences), the
/// Unicode line and paragraph separators, and format characters (bidi overrides that reorder
/// what a reader sees, zero-width characters that hide text, the BOM, interlinear annotations).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_plain_bodies_are_kept_as_they_are() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(
            excerpt(br#"{"error":"nope"}"#),
            r#"{"error":"nope"}"#.to_owned()
        );
        assert_eq!(excerpt("caf\u{e9} ok".as_bytes()), "caf\u{e9} ok");
    }

    #[test]
    fn control_and_format_characters_are_escaped() {
        assert_eq!(
            excerpt(b"a\nERROR forged\r\n\tx\x1b[31m\x00\x7f"),
            "a\\nERROR forged\\r\\n\\tx\\u{1b}[31m\\u{0}\\u{7f}"
        );
        assert_eq!(
            excerpt("x\u{2028}y\u{2029}z\u{202e}w\u{200b}\u{feff}\u{85}".as_bytes()),
            "x\\u{2028}y\\u{2029}z\\u{202e}w\\u{200b}\\u{feff}\\u{85}"
        );
        assert_eq!(
            excerpt(br"a\nb"),
            r"a\\nb",
            "a receiver's own escape stays visible"
        );
    }

    #[test]
    fn invalid_utf8_is_shown_as_bytes() {
        assert_eq!(excerpt(b"ok\xff\xfeend"), "ok\\xff\\xfeend");
    }

    #[test]
    fn long_bodies_are_cut_with_a_marker() {
        let body = vec![b'a'; 1000];
        let shown = excerpt(&body);
        assert_eq!(
            shown,
            format!("{}…(+744 bytes)", "a".repeat(EXCERPT_BODY_LIMIT))
        );
        assert_eq!(
            excerpt(&vec![b'a'; EXCERPT_BODY_LIMIT]),
            "a".repeat(256),
            "no marker when nothing is cut"
        );
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // 255 ASCII bytes, then a 3-byte character that would straddle the limit.
        let mut body = "a".repeat(EXCERPT_BODY_LIMIT - 1).into_bytes();
        body.extend_from_slice("€tail".as_bytes());
        let shown = excerpt(&body);
        assert_eq!(
            shown,
            format!("{}…(+7 bytes)", "a".repeat(EXCERPT_BODY_LIMIT - 1))
        );
    }

    #[test]
    fn escapes_never_push_an_excerpt_past_the_quote_limit() {
        for body in [
            vec![0x1b_u8; 10_000],
            vec![0xff_u8; 10_000],
            "\u{202e}".repeat(5_000).into_bytes(),
            "\u{e0041}".repeat(5_000).into_bytes(),
        ] {
            let shown = excerpt(&body);
            assert!(shown.len() <= QUOTE_LIMIT, "{} bytes", shown.len());
            assert!(shown.ends_with(" bytes)"), "{shown}");
            assert!(!shown.chars().any(needs_escape), "{shown}");
        }
    }

    #[test]
    fn inert_leaves_excerpts_alone() {
        for body in [
            b"plain".to_vec(),
            b"a\nb\\c\x1b".to_vec(),
            vec![0x1b_u8; 10_000],
            vec![b'z'; 70_000],
        ] {
            let once = excerpt(&body);
            assert_eq!(inert(&once).to_string(), once);
        }
    }

    #[test]
    fn inert_escapes_and_caps_raw_text() {
        assert_eq!(
            inert("line\nERROR forged\u{2028}").to_string(),
            "line\\nERROR forged\\u{2028}"
        );
        let long = "y".repeat(5_000);
        let shown = inert(&long).to_string();
        assert!(shown.len() <= QUOTE_LIMIT, "{}", shown.len());
        assert!(shown.ends_with(&format!("…(+{} bytes)", 5_000 - TEXT_LIMIT)));
        assert_eq!(
            format!("{:?}", inert("a\n\" status=200")),
            r#""a\n\" status=200""#
        );
    }

    #[test]
    fn scrub_blanks_every_occurrence_of_our_values() {
        let body = b"authorization: Bearer k3y\nx-echo: k3y k3y\nwebhook-signature: v1,c2ln\n";
        let scrubbed = scrub(body, &[b"k3y", b"v1,c2ln", b""]);
        assert_eq!(
            scrubbed.as_ref(),
            b"authorization: Bearer [REDACTED]\nx-echo: [REDACTED] [REDACTED]\nwebhook-signature: [REDACTED]\n"
        );
        assert!(matches!(
            scrub(b"nothing here", &[b"k3y"]),
            Cow::Borrowed(_)
        ));
        assert_eq!(scrub(b"k3y", &[b"k3y"]).as_ref(), REDACTED.as_bytes());
    }
}
