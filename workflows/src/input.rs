//! AgentWorkflow's input, taken raw and validated in workflow code. The SDK would fail the
//! workflow *task* on a payload its decoder refuses, and Temporal retries a failed task forever:
//! the run would hang. Taking the payloads as they are ([`RawValue`] always decodes) moves every
//! refusal here, where it fails the *workflow* at once with a message naming the field.

use crate::types::MAX_STEPS_LIMIT;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use stephook_core::Message;
use stephook_core::message::describe;
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::{ENCODING_PAYLOAD_KEY, JSON_ENCODING_VAL};

const BINARY_NULL_ENCODING: &[u8] = b"binary/null";
const FIELDS: [&str; 7] = [
    "agent_id",
    "run_id",
    "messages",
    "max_steps",
    "model",
    "system",
    "tools",
];
const SHAPE: &str = "one JSON object {\"agent_id\", \"run_id\"?, \"messages\"?, \"max_steps\"?, \"model\"?, \"system\"?, \"tools\"?}";

/// `{"agent_id", "run_id"?, "messages": [...], "max_steps"?, "model"?, "system"?, "tools"?}`;
/// `messages` are strings or chat objects `{"role", "content"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRunInput {
    pub agent_id: String,
    /// The agent run the steps belong to; defaults to the workflow id without `agent-run-`.
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub messages: Vec<Message>,
    /// At most this many steps; absent: 50 with a model, 3 on the offline echo.
    #[serde(default)]
    pub max_steps: Option<u32>,
    /// The model to ask (the worker's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A system prompt, before the messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The tools to offer, by name (every tool of the worker's MCP servers when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

impl AgentRunInput {
    /// The workflow's input as a client sends it: one `json/plain` payload.
    pub fn to_raw(&self) -> RawValue {
        let data = serde_json::to_vec(self).unwrap_or_default();
        RawValue::new(vec![json_payload(data)])
    }
}

/// A `json/plain` payload, as every Temporal SDK writes JSON.
pub fn json_payload(data: Vec<u8>) -> Payload {
    Payload {
        metadata: [(
            ENCODING_PAYLOAD_KEY.to_owned(),
            JSON_ENCODING_VAL.as_bytes().to_vec(),
        )]
        .into(),
        data,
        ..Default::default()
    }
}

/// Why a run's input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid AgentWorkflow input: {}: expected {}, got {}",
            self.field, self.expected, self.got
        )
    }
}

fn invalid(field: &str, expected: &str, got: impl Into<String>) -> InvalidInput {
    InvalidInput {
        field: field.to_owned(),
        expected: expected.to_owned(),
        got: got.into(),
    }
}

/// Reads and checks the run's input.
pub fn validate(raw: &RawValue) -> Result<AgentRunInput, InvalidInput> {
    let payload = match raw.payloads.as_slice() {
        [payload] => payload,
        [] => return Err(invalid("input", SHAPE, "no input")),
        many => return Err(invalid("input", SHAPE, format!("{} arguments", many.len()))),
    };
    let value = decode(payload)?;
    let Value::Object(object) = &value else {
        return Err(invalid("input", SHAPE, describe(&value)));
    };
    if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(invalid(
            unknown,
            "only the fields agent_id, run_id, messages, max_steps, model, system and tools",
            "an unknown field",
        ));
    }
    let agent_id = match object.get("agent_id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
        Some(other) => return Err(invalid("agent_id", "a non-empty string", describe(other))),
        None => {
            return Err(invalid(
                "agent_id",
                "a non-empty string",
                "nothing (missing)",
            ));
        }
    };
    let run_id = match object.get("run_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.clone()),
        Some(other) => {
            return Err(invalid(
                "run_id",
                "a non-empty string or null",
                describe(other),
            ));
        }
    };
    let messages = match object.get("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                Message::from_json(item).map_err(|e| InvalidInput {
                    field: format!("messages[{index}]{}", e.path),
                    expected: e.expected,
                    got: e.got,
                })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(invalid("messages", "an array of messages", describe(other))),
    };
    let steps_expected = format!("an integer from 1 to {MAX_STEPS_LIMIT}");
    let max_steps = match object.get("max_steps") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_STEPS_LIMIT).contains(n))
                .ok_or_else(|| invalid("max_steps", &steps_expected, describe(value)))?,
        ),
    };
    let text = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.clone())),
        Some(other) => Err(invalid(
            field,
            "a non-empty string or null",
            describe(other),
        )),
    };
    let model = text("model")?;
    let system = text("system")?;
    let tools = match object.get("tools") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::String(name) if !name.trim().is_empty() => Ok(name.clone()),
                    other => Err(invalid(
                        &format!("tools[{index}]"),
                        "a tool name (a non-empty string)",
                        describe(other),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return Err(invalid("tools", "an array of tool names", describe(other))),
    };
    Ok(AgentRunInput {
        agent_id,
        run_id,
        messages,
        max_steps,
        model,
        system,
        tools,
    })
}

fn decode(payload: &Payload) -> Result<Value, InvalidInput> {
    match payload
        .metadata
        .get(ENCODING_PAYLOAD_KEY)
        .map(Vec::as_slice)
    {
        Some(encoding) if encoding == JSON_ENCODING_VAL.as_bytes() => {
            serde_json::from_slice(&payload.data)
                .map_err(|e| invalid("input", SHAPE, format!("invalid JSON ({e})")))
        }
        Some(BINARY_NULL_ENCODING) => Ok(Value::Null),
        Some(other) => Err(invalid(
            "input",
            SHAPE,
            format!(
                "a payload encoded as {:?} (send JSON: json/plain)",
                String::from_utf8_lossy(other)
            ),
        )),
        None => Err(invalid("input", SHAPE, "a payload without an encoding")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(value: Value) -> RawValue {
        RawValue::new(vec![json_payload(value.to_string().into_bytes())])
    }

    #[test]
    fn chat_shaped_messages_are_accepted_with_their_roles() {
        let input = validate(&raw(json!({
            "agent_id": "agent-1",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "plan a trip"}]},
                "fail-at:9"
            ]
        })))
        .expect("valid");
        let roles: Vec<&str> = input.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "user"]);
        assert_eq!(
            input.max_steps, None,
            "the default depends on the worker's model"
        );
        let again = validate(&input.to_raw()).expect("round trip");
        assert_eq!(again, input);
    }

    #[test]
    fn a_run_can_name_its_model_system_prompt_and_tools() {
        let input = validate(&raw(json!({
            "agent_id": "a", "model": "qwen2.5", "system": "be brief", "tools": ["echo", "get-sum"],
            "max_steps": 7
        })))
        .expect("valid");
        assert_eq!(input.model.as_deref(), Some("qwen2.5"));
        assert_eq!(input.system.as_deref(), Some("be brief"));
        assert_eq!(input.tools, Some(vec!["echo".into(), "get-sum".into()]));
        assert_eq!(input.max_steps, Some(7));
        assert_eq!(validate(&input.to_raw()).expect("round trip"), input);
    }

    #[test]
    fn each_kind_of_bad_input_names_its_field() {
        let cases = [
            (json!({"agentId": "a"}), "agentId"),
            (json!({"messages": []}), "agent_id"),
            (json!({"agent_id": ""}), "agent_id"),
            (json!({"agent_id": "a", "max_steps": -1}), "max_steps"),
            (json!({"agent_id": "a", "max_steps": 0}), "max_steps"),
            (json!({"agent_id": "a", "max_steps": 201}), "max_steps"),
            (json!({"agent_id": "a", "max_steps": "3"}), "max_steps"),
            (json!({"agent_id": "a", "run_id": 7}), "run_id"),
            (json!({"agent_id": "a", "model": 4}), "model"),
            (json!({"agent_id": "a", "system": ""}), "system"),
            (json!({"agent_id": "a", "tools": "echo"}), "tools"),
            (json!({"agent_id": "a", "tools": ["echo", 1]}), "tools[1]"),
            (json!({"agent_id": "a", "messages": "hi"}), "messages"),
            (
                json!({"agent_id": "a", "messages": [{"role": "user"}]}),
                "messages[0].content",
            ),
            (
                json!({"agent_id": "a", "messages": ["ok", 5]}),
                "messages[1]",
            ),
            (json!(["agent_id"]), "input"),
            (Value::Null, "input"),
        ];
        for (value, field) in cases {
            let error = validate(&raw(value.clone())).expect_err("refused");
            assert_eq!(error.field, field, "{value}: {error}");
        }
    }

    #[test]
    fn payloads_the_sdk_would_refuse_are_refused_here() {
        let cases = [
            RawValue::new(Vec::new()),
            RawValue::new(vec![
                json_payload(b"{not json".to_vec()),
                json_payload(b"{}".to_vec()),
            ]),
            RawValue::new(vec![json_payload(b"{not json".to_vec())]),
            RawValue::new(vec![Payload {
                metadata: [(ENCODING_PAYLOAD_KEY.to_owned(), b"binary/plain".to_vec())].into(),
                data: vec![0, 159, 146, 150],
                ..Default::default()
            }]),
            RawValue::new(vec![Payload::default()]),
        ];
        for raw in cases {
            let error = validate(&raw).expect_err("refused");
            assert_eq!(error.field, "input", "{error}");
        }
    }
}
