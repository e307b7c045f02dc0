//! The model call of an agent step, with no Temporal in it: one OpenAI-compatible Chat
//! Completions request (OpenAI, vLLM, llama.cpp's server, Ollama's `/v1`, LM Studio, LiteLLM,
//! OpenRouter: one base URL), through a typed client.
//!
//! - [`config`]: what a worker is told (base URL, model, key, timeout);
//! - [`client`]: one request, sent on one pooled client, with no retries of its own (Temporal's
//!   activity retries do that, honouring `Retry-After`);
//! - [`error`]: what a failed call is: worth retrying, or the same answer every time;
//! - [`convert`]: the step's conversation to and from the client's types.

pub mod client;
pub mod config;
pub mod convert;
pub mod error;

pub use client::{Finish, ModelClient, ModelReply, ModelRequest};
pub use config::{ModelConfig, provider_name};
pub use error::ModelError;
