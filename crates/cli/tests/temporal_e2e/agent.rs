//! Issue 13: a real agent step on a real dev server. The model is a loopback server that speaks
//! OpenAI's wire protocol (no hosted model is reachable from here); the tools come from a real
//! MCP server, `@modelcontextprotocol/server-everything` from npm, over stdio and streamable
//! HTTP. Every request the "provider" receives is asserted on.

use crate::harness::{self, Env, Handle, RUN_TIMEOUT, env, wait_until_delivered};
use std::time::{Duration, Instant};
use stephook::temporal::agent_config::AgentConfig;
use stephook_core::chat::ChatRole;
use stephook_core::{Message, Secret, StepId, StepStatus};
use stephook_model::ModelConfig;
use stephook_testkit::{McpHttpServer, ModelAnswer, ModelServer, Reply};
use stephook_tools::McpConfig;
use stephook_workflows::{AgentRunInput, AgentWorkflow, workflow_id_for};
use temporalio_client::{WorkflowCancelOptions, WorkflowGetResultOptions, WorkflowStartOptions};

const MODEL_KEY: &str = "sk-loopback-test-key";

fn stdio_tools(entry: &str) -> McpConfig {
    let text = serde_json::json!({"mcpServers": {"everything": {
        "command": "node", "args": [entry, "stdio"]}}})
    .to_string();
    McpConfig::parse(&text, "test").expect("a valid mcpServers config")
}

fn agent(model: &ModelServer, tools: McpConfig) -> AgentConfig {
    AgentConfig {
        model: Some(ModelConfig {
            base_url: model.base_url().parse().expect("a URL"),
            model: "gpt-4o-mini".into(),
            api_key: Some(Secret::new(MODEL_KEY)),
            timeout: Duration::from_secs(5),
        }),
        mcp: tools,
        tool_timeout: Duration::from_secs(20),
    }
}

fn start_worker(env: &Env, agent: AgentConfig) -> harness::TestWorker {
    let mut config = env.worker_config(env.webhook_args());
    config.agent = agent;
    harness::TestWorker::start(config)
}

async fn start(env: &Env, run_id: &str, message: &str, max_steps: Option<u32>) -> Handle {
    let input = AgentRunInput {
        agent_id: "agent-tools".into(),
        run_id: Some(run_id.into()),
        messages: vec![Message::user(message)],
        max_steps,
        system: Some("You are terse.".into()),
        ..Default::default()
    };
    env.start_raw(run_id, input.to_raw()).await
}

async fn failure_of(handle: &Handle) -> String {
    let error = tokio::time::timeout(
        RUN_TIMEOUT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("ended in time")
    .expect_err("the run fails");
    format!("{error:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_asks_for_echo_and_get_sum_and_the_next_call_carries_their_results() {
    let Some(entry) = stephook_store::testing::mcp_everything() else {
        return;
    };
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let model = ModelServer::start(vec![
        ModelAnswer::tools(&[
            ("echo", r#"{"message":"hi there"}"#),
            ("get-sum", r#"{"a":2,"b":40}"#),
        ]),
        ModelAnswer::text("The sum is 42."),
    ])
    .await;
    let worker = start_worker(&env, agent(&model, stdio_tools(&entry)));

    let handle = start(&env, "tools", "add 2 and 40, and say hi", None).await;
    let result = harness::result(&handle).await;

    // The run: two steps, ended by an answer without tool calls.
    assert_eq!(result.steps, 2);
    assert_eq!(result.stop_reason.as_deref(), Some("end_turn"));
    // What the provider received: the key, the system prompt first, the tools, and in the
    // second call the assistant's tool calls followed by their results.
    let seen = model.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {MODEL_KEY}").as_str())
        );
        let tools = request.tool_names();
        assert!(tools.contains(&"echo".to_owned()) && tools.contains(&"get-sum".to_owned()));
    }
    let first = seen[0].messages();
    assert_eq!(
        (first[0]["role"].as_str(), first[0]["content"].as_str()),
        (Some("system"), Some("You are terse."))
    );
    assert_eq!(first[1]["content"], "add 2 and 40, and say hi");
    let second = seen[1].messages();
    assert_eq!(second.len(), 5, "{second:?}");
    let calls = second[2]["tool_calls"]
        .as_array()
        .expect("the assistant's tool calls");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (second[3]["role"].as_str(), second[4]["role"].as_str()),
        (Some("tool"), Some("tool"))
    );
    assert_eq!(second[3]["tool_call_id"], calls[0]["id"]);
    assert_eq!(second[3]["content"], "Echo: hi there");
    assert_eq!(second[4]["tool_call_id"], calls[1]["id"]);
    assert!(
        second[4]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("42"),
        "{}",
        second[4]
    );

    // The steps: usage, stop reason (null on the step that goes on), metrics, messages.
    let steps = env.steps("tools").await;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].stop_reason, None);
    assert_eq!(steps[1].stop_reason.as_deref(), Some("end_turn"));
    for step in &steps {
        assert_eq!(step.status, StepStatus::Success);
        assert_eq!(step.usage.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(step.usage.provider.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            (
                step.usage.prompt_tokens,
                step.usage.completion_tokens,
                step.usage.total_tokens
            ),
            (21, 9, 30)
        );
        assert_eq!(
            (step.usage.cached_tokens, step.usage.reasoning_tokens),
            (Some(4), Some(2))
        );
    }
    let metrics = env
        .store
        .step_metrics(&steps[0].id)
        .await
        .unwrap()
        .expect("metrics");
    assert!(metrics.tool_execution_ms.is_some(), "{metrics:?}");
    let messages = env.store.step_messages(&steps[0].id).await.unwrap();
    let roles: Vec<ChatRole> = messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [ChatRole::Assistant, ChatRole::Tool, ChatRole::Tool]);
    assert_eq!(messages[1].content.as_deref(), Some("Echo: hi there"));
    let last = env.store.step_messages(&steps[1].id).await.unwrap();
    assert_eq!(last[0].content.as_deref(), Some("The sum is 42."));

    // The webhooks arrive, and a receiver that gets a step id can fetch what the step did.
    for step in &steps {
        wait_until_delivered(&env.store, &step.id, Duration::from_secs(30)).await;
    }
    let api = stephook_api::bind(&stephook_api::ApiConfig::loopback(0), env.store.clone())
        .await
        .expect("the API binds");
    let base = api.base_url();
    tokio::spawn(api.serve(std::future::pending()));
    let body = reqwest::get(format!("{base}/v1/steps/{}/messages", steps[0].id))
        .await
        .expect("GET messages")
        .text()
        .await
        .expect("a body");
    let served: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(served[0]["role"], "assistant");
    assert_eq!(served[0]["tool_calls"][0]["function"]["name"], "echo");
    assert_eq!(served[1]["role"], "tool");
    assert_eq!(served[1]["content"], "Echo: hi there");
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_over_streamable_http_and_bad_tool_calls_go_back_to_the_model() {
    let Some(entry) = stephook_store::testing::mcp_everything() else {
        return;
    };
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let http = McpHttpServer::start(&entry);
    let text = serde_json::json!({"mcpServers": {"remote": {"url": http.url}}}).to_string();
    let model = ModelServer::start(vec![
        ModelAnswer::tools(&[
            ("echo", r#"{"message":"over http"}"#),
            ("ecko", "{}"),
            ("get-sum", "{not json"),
        ]),
        ModelAnswer::text("done"),
    ])
    .await;
    let worker = start_worker(
        &env,
        agent(&model, McpConfig::parse(&text, "test").unwrap()),
    );

    let result = harness::result(&start(&env, "http-tools", "try the tools", None).await).await;

    assert_eq!(
        result.steps, 2,
        "a malformed tool call does not fail the run"
    );
    let second = model.requests()[1].messages().to_vec();
    assert_eq!(second[3]["content"], "Echo: over http");
    let unknown = second[4]["content"].as_str().unwrap_or_default();
    assert!(
        unknown.starts_with("Error:") && unknown.contains("echo"),
        "{unknown}"
    );
    let not_json = second[5]["content"].as_str().unwrap_or_default();
    assert!(
        not_json.starts_with("Error:") && not_json.contains("JSON"),
        "{not_json}"
    );
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_error_class_ends_the_way_it_says() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let model = ModelServer::start(Vec::new()).await;
    let worker = start_worker(&env, agent(&model, McpConfig::default()));

    // 429 with Retry-After, then a 500: retried with backoff, the run completes.
    model.script(vec![
        ModelAnswer::rate_limited(2),
        ModelAnswer::status(500, r#"{"error":{"message":"upstream"}}"#),
        ModelAnswer::text("ok"),
    ]);
    let started = Instant::now();
    let retried = harness::result(&start(&env, "retried", "hi", None).await).await;
    assert_eq!(retried.steps, 1);
    assert_eq!(model.requests().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );

    // 400 context_length_exceeded and 401: the step fails at once, llm_api_error, notified.
    for (run_id, answer, error_type, status) in [
        (
            "too-long",
            ModelAnswer::context_too_long(),
            "context_length_exceeded",
            400,
        ),
        (
            "bad-key",
            ModelAnswer::status(
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-loopback-test-key"}}"#,
            ),
            "unauthorized",
            401,
        ),
    ] {
        let before = model.requests().len();
        model.script(vec![answer]);
        let failure = failure_of(&start(&env, run_id, "hi", None).await).await;
        assert!(failure.contains("LlmApiError"), "{failure}");
        assert_eq!(model.requests().len(), before + 1, "{run_id}: not retried");
        let step = &env.steps(run_id).await[0];
        assert_eq!(step.status, StepStatus::Failed);
        assert_eq!(step.stop_reason.as_deref(), Some("llm_api_error"));
        assert_eq!(step.error_type.as_deref(), Some(error_type));
        let data = step.error_data.clone().expect("error_data");
        assert_eq!(data["status"], status);
        assert!(
            !data.to_string().contains(MODEL_KEY),
            "never the key: {data}"
        );
        wait_until_delivered(&env.store, &step.id, Duration::from_secs(30)).await;
    }

    // A run naming a tool no MCP server offers: its first step fails, naming the tool, and the
    // model is never asked.
    let before = model.requests().len();
    let input = AgentRunInput {
        agent_id: "agent-tools".into(),
        run_id: Some("no-such-tool".into()),
        messages: vec![Message::user("hi")],
        tools: Some(vec!["web-search".into()]),
        ..Default::default()
    };
    let failure = failure_of(&env.start_raw("no-such-tool", input.to_raw()).await).await;
    assert!(
        failure.contains("UnknownTools") && failure.contains("web-search"),
        "{failure}"
    );
    assert_eq!(model.requests().len(), before, "the model was not asked");
    let step = &env.steps("no-such-tool").await[0];
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.error_type.as_deref(), Some("UnknownTools"));
    wait_until_delivered(&env.store, &step.id, Duration::from_secs(30)).await;

    // Cut at the token limit: the run ends, max_tokens_exceeded.
    model.script(vec![ModelAnswer::Length("and then".into())]);
    let cut = harness::result(&start(&env, "cut", "hi", None).await).await;
    assert_eq!(cut.stop_reason.as_deref(), Some("max_tokens_exceeded"));
    // Tool calls every step: max_steps ends it.
    model.set_fallback(ModelAnswer::tools(&[("nothing-here", "{}")]));
    let capped = harness::result(&start(&env, "capped", "hi", Some(2)).await).await;
    assert_eq!(
        (capped.steps, capped.stop_reason.as_deref()),
        (2, Some("max_steps"))
    );
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_a_model_call_stores_and_notifies_a_cancelled_step() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let model = ModelServer::start(vec![ModelAnswer::Slow(
        Duration::from_secs(60),
        Box::new(ModelAnswer::text("too late")),
    )])
    .await;
    let mut agent = agent(&model, McpConfig::default());
    if let Some(config) = agent.model.as_mut() {
        config.timeout = Duration::from_secs(120);
    }
    let worker = start_worker(&env, agent);
    let handle = start(&env, "cancel-model", "hi", None).await;
    model.wait_for(1, RUN_TIMEOUT).await;

    let cancelled_at = Instant::now();
    handle
        .cancel(
            WorkflowCancelOptions::builder()
                .reason("test".to_owned())
                .build(),
        )
        .await
        .expect("cancel");
    let ended = tokio::time::timeout(
        RUN_TIMEOUT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("ended in time");

    assert!(ended.is_err(), "the run was cancelled");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(30),
        "the model call was aborted, not waited for: {:?}",
        cancelled_at.elapsed()
    );
    let steps = env.steps("cancel-model").await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].status, StepStatus::Cancelled);
    wait_until_delivered(&env.store, &steps[0].id, Duration::from_secs(30)).await;
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_a_tool_call_and_the_run_completes_on_another() {
    let Some(entry) = stephook_store::testing::mcp_everything() else {
        return;
    };
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let model = ModelServer::start(vec![
        ModelAnswer::tools(&[(
            "trigger-long-running-operation",
            r#"{"duration": 4, "steps": 4}"#,
        )]),
        ModelAnswer::text("finished"),
    ])
    .await;
    let first = start_worker(&env, agent(&model, stdio_tools(&entry)));
    let handle = start(&env, "killed-tool", "run the long one", None).await;
    model.wait_for(1, RUN_TIMEOUT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.crash().await;

    let second = start_worker(&env, agent(&model, stdio_tools(&entry)));
    let result = harness::result(&handle).await;

    assert_eq!(
        (result.steps, result.stop_reason.as_deref()),
        (2, Some("end_turn"))
    );
    let steps = env.steps("killed-tool").await;
    assert_eq!(steps.len(), 2, "each step stored once");
    let tool_result = env.store.step_messages(&steps[0].id).await.unwrap();
    assert!(
        tool_result[1]
            .content
            .as_deref()
            .unwrap_or_default()
            .contains("Long running operation completed"),
        "{tool_result:?}"
    );
    second.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_too_large_for_temporal_fails_the_run_saying_so() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let model = ModelServer::start(Vec::new()).await;
    let worker = start_worker(&env, agent(&model, McpConfig::default()));
    let huge = "x".repeat(stephook_workflows::MAX_CONVERSATION_BYTES + 1000);
    let run_id = "too-large";
    let input = AgentRunInput {
        agent_id: "agent".into(),
        run_id: Some(run_id.into()),
        messages: vec![Message::user(huge)],
        ..Default::default()
    };
    env.client
        .start_workflow(
            AgentWorkflow::run,
            input.to_raw(),
            WorkflowStartOptions::new(env.task_queue.clone(), workflow_id_for(run_id)).build(),
        )
        .await
        .expect("start");
    let handle = env
        .client
        .get_workflow_handle::<AgentWorkflow>(workflow_id_for(run_id));

    let failure = failure_of(&handle).await;

    assert!(failure.contains("ConversationTooLarge"), "{failure}");
    assert!(failure.contains("payload limit"), "{failure}");
    assert!(model.requests().is_empty(), "nothing was sent to the model");
    let _ = StepId::new_random();
    worker.stop().await.expect("graceful stop");
}
