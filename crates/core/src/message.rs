//! An agent run's messages, in the two shapes agent platforms send: plain strings, and chat
//! objects `{"role", "content"}` (Letta's and OpenAI's) whose content is a string or a list of
//! `{"type": "text", "text"}` parts. One reader serves both the workflow's input validation
//! (which names the field that is wrong) and the activities' payloads.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::fmt;

/// The user's role, which a plain-string message gets.
pub const USER_ROLE: &str = "user";
/// The role a plain-string message gets.
pub const DEFAULT_ROLE: &str = USER_ROLE;
const TEXT_PART: &str = "text";

/// One message of an agent run; roles are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    /// The text (a list of text parts is joined with newlines).
    pub content: String,
}

/// Why a message was refused: where in it, what was expected, what was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    /// Where inside the message, e.g. `.content[1].type` (empty: the message itself).
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.path, self.expected, self.got
        )
    }
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: DEFAULT_ROLE.to_owned(),
            content: content.into(),
        }
    }

    /// Reads one message from JSON (a string, or a chat object).
    pub fn from_json(value: &Value) -> Result<Self, MessageError> {
        let object = match value {
            Value::String(text) => return Ok(Self::user(text.clone())),
            Value::Object(object) => object,
            other => {
                return Err(error(
                    "",
                    "a string or a chat object {\"role\", \"content\"}",
                    other,
                ));
            }
        };
        let role = match object.get("role") {
            Some(Value::String(role)) if !role.trim().is_empty() => role.clone(),
            Some(other) => return Err(error(".role", "a non-empty string", other)),
            None => return Err(missing(".role", "a non-empty string")),
        };
        let content = match object.get("content") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => text_parts(parts)?,
            Some(other) => {
                return Err(error(
                    ".content",
                    "a string or a list of {\"type\": \"text\", \"text\"} parts",
                    other,
                ));
            }
            None => return Err(missing(".content", "a string or a list of text parts")),
        };
        Ok(Self { role, content })
    }
}

fn text_parts(parts: &[Value]) -> Result<String, MessageError> {
    let mut texts = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let path = format!(".content[{index}]");
        let Value::Object(part) = part else {
            return Err(error(&path, "a {\"type\": \"text\", \"text\"} part", part));
        };
        match part.get("type") {
            Some(Value::String(kind)) if kind == TEXT_PART => {}
            Some(other) => return Err(error(&format!("{path}.type"), "\"text\"", other)),
            None => return Err(missing(&format!("{path}.type"), "\"text\"")),
        }
        match part.get("text") {
            Some(Value::String(text)) => texts.push(text.as_str()),
            Some(other) => return Err(error(&format!("{path}.text"), "a string", other)),
            None => return Err(missing(&format!("{path}.text"), "a string")),
        }
    }
    Ok(texts.join("\n"))
}

fn error(path: &str, expected: &str, got: &Value) -> MessageError {
    MessageError {
        path: path.to_owned(),
        expected: expected.to_owned(),
        got: describe(got),
    }
}

fn missing(path: &str, expected: &str) -> MessageError {
    MessageError {
        path: path.to_owned(),
        expected: expected.to_owned(),
        got: "nothing (the field is missing)".to_owned(),
    }
}

/// A short description of a JSON value for an error message: its kind, and for a scalar the
/// value itself (shortened), never a whole document.
pub fn describe(value: &Value) -> String {
    const MAX: usize = 40;
    let shown = |text: String| {
        if text.len() > MAX {
            let cut = (0..=MAX)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}…", &text[..cut])
        } else {
            text
        }
    };
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", shown(format!("{s:?}"))),
        Value::Array(items) => format!("an array of {} item(s)", items.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(|e| serde::de::Error::custom(format!("message{e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_chat_objects_are_messages_with_their_roles() {
        assert_eq!(Message::from_json(&json!("hi")), Ok(Message::user("hi")));
        assert_eq!(
            Message::from_json(&json!({"role": "system", "content": "be brief"})),
            Ok(Message {
                role: "system".into(),
                content: "be brief".into()
            })
        );
        let parts = json!({"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}
        ]});
        assert_eq!(Message::from_json(&parts).unwrap().content, "a\nb");
        // Activity payloads of either shape decode (runs started before roles were kept).
        let decoded: Vec<Message> =
            serde_json::from_value(json!(["x", {"role": "assistant", "content": "y"}])).unwrap();
        assert_eq!(decoded[1].role, "assistant");
    }

    #[test]
    fn refusals_name_the_place_and_what_was_expected() {
        let cases = [
            (json!(3), "", "the number 3"),
            (json!({"content": "x"}), ".role", "missing"),
            (
                json!({"role": "", "content": "x"}),
                ".role",
                "the string \"\"",
            ),
            (json!({"role": "user"}), ".content", "missing"),
            (
                json!({"role": "user", "content": 1}),
                ".content",
                "the number 1",
            ),
            (
                json!({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
                ".content[0].type",
                "image_url",
            ),
            (
                json!({"role": "user", "content": [{"type": "text"}]}),
                ".content[0].text",
                "missing",
            ),
        ];
        for (value, path, got) in cases {
            let error = Message::from_json(&value).expect_err("refused");
            assert_eq!(error.path, path, "{value}");
            assert!(error.got.contains(got), "{value}: {error}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "x".repeat(500);
        assert!(describe(&json!(long)).len() < 80);
    }
}
