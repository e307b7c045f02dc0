//! What a tool call gives back to the model: the text of its result, capped so that one tool
//! cannot flood the conversation (and the workflow's history), or an error the model can read
//! and act on. A failing tool never fails the run.

use serde::{Deserialize, Serialize};

/// A tool result over this size is cut, with a marker, before it enters the conversation.
pub const MAX_TOOL_RESULT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolOutcome {
    /// What the model reads.
    pub content: String,
    /// The tool failed (an error result, an unknown tool, arguments that are not JSON, a server
    /// that did not answer): the model is told so.
    pub is_error: bool,
    /// The result was cut at [`MAX_TOOL_RESULT_BYTES`].
    #[serde(default)]
    pub truncated: bool,
}

impl ToolOutcome {
    /// A result, capped.
    pub fn result(text: String, is_error: bool) -> Self {
        let (content, truncated) = cap(text, MAX_TOOL_RESULT_BYTES);
        Self {
            content,
            is_error,
            truncated,
        }
    }

    /// An error the model should read (`Error: …`).
    pub fn error(reason: impl Into<String>) -> Self {
        Self::result(format!("Error: {}", reason.into()), true)
    }
}

/// At most `limit` bytes of `text` (cut on a character boundary), with a marker saying how much
/// was left out.
pub fn cap(text: String, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = text.len() - end;
    let mut shown = text;
    shown.truncate(end);
    shown.push_str(&format!(
        "\n…[tool result truncated: {left_out} more bytes not shown]"
    ));
    (shown, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_are_cut_on_a_character_boundary_with_a_marker() {
        let (short, cut) = cap("hello".into(), 10);
        assert_eq!((short.as_str(), cut), ("hello", false));
        let (shown, cut) = cap("ééééé".into(), 5);
        assert!(cut);
        assert!(shown.starts_with("éé"), "{shown}");
        assert!(shown.contains("6 more bytes"), "{shown}");
        let big = ToolOutcome::result("x".repeat(MAX_TOOL_RESULT_BYTES + 10), false);
        assert!(big.truncated && big.content.len() < MAX_TOOL_RESULT_BYTES + 100);
    }
}
