//! The model client against a loopback server that speaks OpenAI's wire protocol: what it sends
//! (the key, the conversation with tool results, the tools), what it reads back (text, several
//! tool calls, usage with cached and reasoning tokens, an answer cut at the limit), and how each
//! failure is classified.

use std::time::Duration;
use stephook_core::Secret;
use stephook_core::chat::{ChatMessage, ChatRole, FunctionCall, ToolCall, ToolSpec};
use stephook_model::{Finish, ModelClient, ModelConfig, ModelError, ModelRequest};
use stephook_testkit::{ModelAnswer, ModelServer};

const KEY: &str = "sk-test-key-0123456789";

fn client(server: &ModelServer, timeout: Duration) -> ModelClient {
    ModelClient::new(ModelConfig {
        base_url: server.base_url().parse().unwrap(),
        model: "gpt-4o-mini".into(),
        api_key: Some(Secret::new(KEY)),
        timeout,
    })
    .expect("a client")
}

fn request() -> ModelRequest {
    let call = ToolCall {
        id: "call_a".into(),
        kind: "function".into(),
        function: FunctionCall {
            name: "echo".into(),
            arguments: r#"{"message":"hi"}"#.into(),
        },
    };
    ModelRequest {
        model: None,
        messages: vec![
            ChatMessage::text(ChatRole::System, "be brief"),
            ChatMessage::text(ChatRole::User, "say hi through the tool"),
            ChatMessage {
                role: ChatRole::Assistant,
                content: None,
                tool_calls: vec![call.clone()],
                tool_call_id: None,
                name: None,
            },
            ChatMessage::tool_result(&call, "Echo: hi"),
        ],
        tools: vec![ToolSpec {
            name: "echo".into(),
            description: Some("Echoes back the input string".into()),
            parameters: serde_json::json!({"type": "object",
                "properties": {"message": {"type": "string"}}, "required": ["message"]}),
        }],
    }
}

#[tokio::test]
async fn sends_the_conversation_and_reads_tool_calls_and_usage() {
    let server = ModelServer::start(vec![
        ModelAnswer::tools(&[
            ("echo", r#"{"message":"a"}"#),
            ("get-sum", r#"{"a":1,"b":2}"#),
        ]),
        ModelAnswer::text("All done."),
        ModelAnswer::Length("cut he".into()),
    ])
    .await;
    let client = client(&server, Duration::from_secs(5));

    let first = client.complete(&request()).await.expect("an answer");
    let second = client.complete(&request()).await.expect("an answer");
    let third = client.complete(&request()).await.expect("an answer");

    assert_eq!(first.finish, Finish::ToolCalls);
    let calls: Vec<_> = first
        .message
        .tool_calls
        .iter()
        .map(|c| (c.function.name.as_str(), c.function.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("echo", r#"{"message":"a"}"#),
            ("get-sum", r#"{"a":1,"b":2}"#)
        ]
    );
    assert_eq!(first.usage.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(first.usage.provider.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (
            first.usage.prompt_tokens,
            first.usage.completion_tokens,
            first.usage.total_tokens
        ),
        (21, 9, 30)
    );
    assert_eq!(
        (first.usage.cached_tokens, first.usage.reasoning_tokens),
        (Some(4), Some(2))
    );
    assert_eq!(
        (second.finish, second.message.content.as_deref()),
        (Finish::Stop, Some("All done."))
    );
    assert_eq!(third.finish, Finish::Length);

    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen[0].body["model"], "gpt-4o-mini");
    assert_eq!(seen[0].tool_names(), ["echo"]);
    let roles: Vec<_> = seen[0]
        .messages()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    assert_eq!(seen[0].messages()[3]["tool_call_id"], "call_a");
    assert_eq!(seen[0].messages()[3]["content"], "Echo: hi");
    assert_eq!(
        seen[0].messages()[2]["tool_calls"][0]["function"]["name"],
        "echo"
    );
}

#[tokio::test]
async fn each_provider_failure_falls_into_its_class() {
    let server = ModelServer::start(vec![
        ModelAnswer::rate_limited(7),
        ModelAnswer::context_too_long(),
        ModelAnswer::status(500, r#"{"error":{"message":"upstream crashed"}}"#),
        ModelAnswer::status(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-test-key-0123456789"}}"#,
        ),
        ModelAnswer::status(
            404,
            r#"{"error":{"message":"The model `nope` does not exist"}}"#,
        ),
        ModelAnswer::Garbage,
        ModelAnswer::Slow(Duration::from_secs(3), Box::new(ModelAnswer::text("late"))),
    ])
    .await;
    let client = client(&server, Duration::from_secs(1));
    let mut outcomes = Vec::new();
    for _ in 0..7 {
        outcomes.push(client.complete(&request()).await.expect_err("a failure"));
    }

    assert!(
        matches!(&outcomes[0], ModelError::Retryable { status: Some(429), retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        "{:?}",
        outcomes[0]
    );
    let permanent = |e: &ModelError| match e {
        ModelError::Permanent {
            error_type,
            status,
            excerpt,
        } => (error_type.clone(), *status, excerpt.clone()),
        other => panic!("expected permanent, got {other:?}"),
    };
    assert_eq!(permanent(&outcomes[1]).0, "context_length_exceeded");
    assert_eq!(permanent(&outcomes[1]).1, 400);
    assert!(matches!(
        &outcomes[2],
        ModelError::Retryable {
            status: Some(500),
            ..
        }
    ));
    let (kind, status, excerpt) = permanent(&outcomes[3]);
    assert_eq!((kind.as_str(), status), ("unauthorized", 401));
    assert!(
        !excerpt.contains(KEY),
        "the key never comes back: {excerpt}"
    );
    assert_eq!(permanent(&outcomes[4]).0, "not_found");
    assert!(
        matches!(&outcomes[5], ModelError::Malformed { .. }),
        "{:?}",
        outcomes[5]
    );
    assert!(
        matches!(&outcomes[6], ModelError::Retryable { status: None, reason, .. } if reason.contains("no answer within")),
        "{:?}",
        outcomes[6]
    );
    // Seven calls, seven requests: the client never retries on its own.
    assert_eq!(server.requests().len(), 7);
}
