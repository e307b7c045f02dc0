//! A step's conversation in OpenAI's Chat Completions shape: what the model is sent, what it
//! answers (text and tool calls), and the tool results that go back to it. These values travel
//! in workflow payloads, are stored with each step, and are served by the API as they are, so
//! any client that reads OpenAI's chat messages reads them.

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    Tool,
}

/// One chat message: `{"role", "content", "tool_calls", "tool_call_id", "name"}` (absent fields
/// are left out, as the provider's API does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// An assistant message's tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A tool message: the tool that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn text(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    /// The answer to tool call `call` (with the tool's name, for people reading it).
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Tool,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
            name: Some(call.function.name.clone()),
        }
    }
}

/// A tool call as the model asked for it: `arguments` is the JSON text the model wrote (which
/// may not be JSON at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

/// A tool the model may call: its name, what it does, and its arguments' JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parameters: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_openais_shape() {
        let call = ToolCall {
            id: "call_1".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "echo".into(),
                arguments: r#"{"message":"hi"}"#.into(),
            },
        };
        let assistant = ChatMessage {
            role: ChatRole::Assistant,
            content: None,
            tool_calls: vec![call.clone()],
            tool_call_id: None,
            name: None,
        };
        assert_eq!(
            serde_json::to_value(&assistant).unwrap(),
            serde_json::json!({"role": "assistant", "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "echo", "arguments": "{\"message\":\"hi\"}"}}]})
        );
        assert_eq!(
            serde_json::to_value(ChatMessage::tool_result(&call, "Echo: hi")).unwrap(),
            serde_json::json!({"role": "tool", "content": "Echo: hi", "tool_call_id": "call_1",
                "name": "echo"})
        );
    }
}
