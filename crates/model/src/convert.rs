//! The step's conversation (stephook's own chat types, which travel in workflow payloads and the
//! store) to the client's request types, and the client's response back.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent,
    ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools, CompletionUsage,
    FinishReason, FunctionCall as OpenAiFunctionCall, FunctionObject,
};
use stephook_core::Usage;
use stephook_core::chat::{ChatMessage, ChatRole, FunctionCall, ToolCall, ToolSpec};

use crate::client::Finish;

pub fn request_message(message: &ChatMessage) -> ChatCompletionRequestMessage {
    let text = message.content.clone().unwrap_or_default();
    match message.role {
        ChatRole::System => ChatCompletionRequestSystemMessage::from(text).into(),
        ChatRole::User => ChatCompletionRequestUserMessage::from(text).into(),
        ChatRole::Tool => ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(text),
            tool_call_id: message.tool_call_id.clone().unwrap_or_default(),
        }
        .into(),
        ChatRole::Assistant => {
            #[allow(deprecated)] // `function_call`: the deprecated field must still be named
            let assistant = ChatCompletionRequestAssistantMessage {
                content: message
                    .content
                    .clone()
                    .map(ChatCompletionRequestAssistantMessageContent::Text),
                refusal: None,
                name: None,
                audio: None,
                tool_calls: (!message.tool_calls.is_empty())
                    .then(|| message.tool_calls.iter().map(request_tool_call).collect()),
                function_call: None,
            };
            assistant.into()
        }
    }
}

fn request_tool_call(call: &ToolCall) -> ChatCompletionMessageToolCalls {
    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
        id: call.id.clone(),
        function: OpenAiFunctionCall {
            name: call.function.name.clone(),
            arguments: call.function.arguments.clone(),
        },
    })
}

pub fn tool(spec: &ToolSpec) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: spec.name.clone(),
            description: spec.description.clone(),
            parameters: Some(spec.parameters.clone()),
            strict: None,
        },
    })
}

/// The tool calls of an answer; custom (non-function) tool calls, which stephook never offers,
/// are kept as calls of an unknown tool so the model hears about it.
pub fn tool_calls(calls: Option<Vec<ChatCompletionMessageToolCalls>>) -> Vec<ToolCall> {
    calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| match call {
            ChatCompletionMessageToolCalls::Function(call) => ToolCall {
                id: call.id,
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: call.function.name,
                    arguments: call.function.arguments,
                },
            },
            ChatCompletionMessageToolCalls::Custom(call) => ToolCall {
                id: call.id,
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: call.custom_tool.name,
                    arguments: call.custom_tool.input,
                },
            },
        })
        .collect()
}

pub fn finish(reason: Option<FinishReason>) -> Finish {
    match reason {
        Some(FinishReason::ToolCalls) | Some(FinishReason::FunctionCall) => Finish::ToolCalls,
        Some(FinishReason::Length) => Finish::Length,
        Some(FinishReason::ContentFilter) => Finish::ContentFilter,
        Some(FinishReason::Stop) | None => Finish::Stop,
    }
}

pub fn usage(usage: Option<&CompletionUsage>, model: &str, provider: &str) -> Usage {
    let Some(usage) = usage else {
        return Usage {
            model: Some(model.to_owned()),
            provider: Some(provider.to_owned()),
            ..Default::default()
        };
    };
    Usage {
        model: Some(model.to_owned()),
        provider: Some(provider.to_owned()),
        prompt_tokens: i64::from(usage.prompt_tokens),
        completion_tokens: i64::from(usage.completion_tokens),
        total_tokens: i64::from(usage.total_tokens),
        cached_tokens: usage
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .map(i64::from),
        reasoning_tokens: usage
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .map(i64::from),
    }
}
