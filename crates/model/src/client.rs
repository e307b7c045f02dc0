//! Send: one pooled client per process, built once, with no retries of its own (the call's
//! retries are Temporal's, honouring the provider's `Retry-After`), one request per call.

use crate::config::ModelConfig;
use crate::convert;
use crate::error::ModelError;
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionRequestArgs};
use serde::{Deserialize, Serialize};
use stephook_core::Usage;
use stephook_core::chat::{ChatMessage, ChatRole, ToolSpec};
use stephook_core::excerpt::excerpt;

/// What one model call is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// `None`: the worker's configured model.
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// A whole answer.
    Stop,
    /// It asked for tools.
    ToolCalls,
    /// Cut at the token limit.
    Length,
    /// The provider withheld (part of) the answer.
    ContentFilter,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelReply {
    /// The assistant message (text, tool calls, or both).
    pub message: ChatMessage,
    pub finish: Finish,
    /// Model (as the provider named it), provider and tokens.
    pub usage: Usage,
}

/// A failed HTTP answer, as the middleware hands it up: its status, `Retry-After` and body.
#[derive(Debug)]
struct HttpFailure {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl std::error::Error for HttpFailure {}

/// At most this much of a failed answer is read.
const FAILED_BODY_LIMIT: usize = 64 * 1024;

/// Cheap to clone: clones share the client and its connection pool.
#[derive(Clone, Debug)]
pub struct ModelClient {
    client: Client<OpenAIConfig>,
    config: ModelConfig,
    provider: String,
}

impl ModelClient {
    pub fn new(config: ModelConfig) -> Result<Self, ModelError> {
        // reqwest 0.13 brings no crypto provider of its own here; the process's is ring (a
        // second install is refused, which is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest13::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ModelError::transport(format!("cannot build the HTTP client: {e}")))?;
        let mut openai = OpenAIConfig::new()
            .with_api_base(config.base_url.as_str().trim_end_matches('/'))
            .with_api_key(
                config
                    .api_key
                    .as_ref()
                    .map(|key| key.expose().to_owned())
                    .unwrap_or_default(),
            );
        // OPENAI_ORG_ID / OPENAI_PROJECT_ID are read from the environment by the config; a
        // provider other than OpenAI must not receive them.
        openai = openai.with_org_id("").with_project_id("");
        let sender = http.clone();
        let service = tower::service_fn(move |request: HttpRequestFactory| {
            let http = sender.clone();
            async move {
                let request = request.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                if response.status().is_success() {
                    return Ok::<_, OpenAIError>(response);
                }
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest13::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = read_bounded(response).await;
                Err(OpenAIError::Boxed(Box::new(HttpFailure {
                    status,
                    retry_after,
                    body,
                })))
            }
        });
        let client = Client::build(http, openai).with_http_service(service);
        let provider = config.provider();
        Ok(Self {
            client,
            config,
            provider,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The model a request asks for.
    pub fn model_for(&self, request: &ModelRequest) -> String {
        request
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| self.config.model.clone())
    }

    /// One call; never retried here.
    pub async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ModelError> {
        let model = self.model_for(request);
        let body = self.request(&model, request)?;
        let response = self
            .client
            .chat()
            .create(body)
            .await
            .map_err(|e| self.classify(e))?;
        let usage = convert::usage(response.usage.as_ref(), &response.model, &self.provider);
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::Malformed {
                excerpt: "no choices in the answer".to_owned(),
            })?;
        Ok(ModelReply {
            message: ChatMessage {
                role: ChatRole::Assistant,
                content: choice.message.content,
                tool_calls: convert::tool_calls(choice.message.tool_calls),
                tool_call_id: None,
                name: None,
            },
            finish: convert::finish(choice.finish_reason),
            usage,
        })
    }

    fn request(
        &self,
        model: &str,
        request: &ModelRequest,
    ) -> Result<CreateChatCompletionRequest, ModelError> {
        let mut args = CreateChatCompletionRequestArgs::default();
        args.model(model).messages(
            request
                .messages
                .iter()
                .map(convert::request_message)
                .collect::<Vec<_>>(),
        );
        if !request.tools.is_empty() {
            args.tools(request.tools.iter().map(convert::tool).collect::<Vec<_>>());
        }
        args.build().map_err(|e| ModelError::Permanent {
            error_type: "bad_request".to_owned(),
            status: 0,
            excerpt: excerpt(e.to_string().as_bytes()),
        })
    }

    fn classify(&self, error: OpenAIError) -> ModelError {
        let key = self.config.api_key.as_ref().map(|k| k.expose());
        match error {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
                Ok(failure) => ModelError::from_status(
                    failure.status,
                    failure.retry_after.as_deref(),
                    &failure.body,
                    key,
                ),
                Err(other) => ModelError::transport(other.to_string()),
            },
            OpenAIError::Reqwest(error) if error.is_timeout() => ModelError::transport(format!(
                "no answer within {:?} ({})",
                self.config.timeout,
                crate::config::TIMEOUT_VAR
            )),
            OpenAIError::Reqwest(error) => ModelError::transport(transport_reason(&error)),
            OpenAIError::ApiError(api) => ModelError::from_status(
                api.status_code.as_u16(),
                None,
                api.api_error.message.as_bytes(),
                key,
            ),
            OpenAIError::JSONDeserialize(_, body) => ModelError::Malformed {
                excerpt: excerpt(body.as_bytes()),
            },
            other => ModelError::Malformed {
                excerpt: excerpt(other.to_string().as_bytes()),
            },
        }
    }
}

/// reqwest's message repeats the URL; the chain of sources says what happened without it.
fn transport_reason(error: &reqwest13::Error) -> String {
    let mut message = String::from(if error.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

async fn read_bounded(mut response: reqwest13::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < FAILED_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = FAILED_BODY_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}
