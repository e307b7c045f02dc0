//! Connecting to Temporal: the SDK's envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
//! TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE, a temporal.toml profile), with the two
//! flags below on top, and errors that say which setting to fix.

use anyhow::{Context as _, anyhow};
use std::time::Duration;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::tonic::{Code, Request};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression, Url,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;

/// Where to find Temporal. Unset flags leave the envconfig values alone.
#[derive(Debug, Clone, clap::Args)]
pub struct TemporalArgs {
    /// Temporal frontend, host:port or URL (default localhost:7233).
    #[arg(long = "temporal-address", env = "TEMPORAL_ADDRESS")]
    pub address: Option<String>,
    /// Temporal namespace (default "default").
    #[arg(long = "temporal-namespace", env = "TEMPORAL_NAMESPACE")]
    pub namespace: Option<String>,
    /// gRPC compression towards Temporal: none (default) or gzip. The SDK's own default is gzip,
    /// which cost the worker 20-40 % more CPU per step in `stephook bench temporal` for
    /// stephook's small payloads; choose gzip for a slow or metered link.
    #[arg(
        long = "temporal-grpc-compression",
        env = "STEPHOOK_TEMPORAL_GRPC_COMPRESSION",
        value_enum,
        default_value_t = Compression::None
    )]
    pub grpc_compression: Compression,
    /// How long connecting (and checking the namespace) may take before giving up: a server
    /// address that drops packets would otherwise stall for the OS's TCP timeout (minutes).
    #[arg(
        long = "temporal-connect-timeout",
        env = "STEPHOOK_TEMPORAL_CONNECT_TIMEOUT",
        default_value = DEFAULT_CONNECT_TIMEOUT
    )]
    pub connect_timeout: String,
}

pub const DEFAULT_CONNECT_TIMEOUT: &str = "10s";
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(600);

impl Default for TemporalArgs {
    fn default() -> Self {
        Self {
            address: None,
            namespace: None,
            grpc_compression: Compression::None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT.to_owned(),
        }
    }
}

/// `--temporal-grpc-compression`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

impl TemporalArgs {
    /// Arguments pointing at one server, e.g. a dev server started by a test.
    pub fn at(address: impl Into<String>) -> Self {
        Self {
            address: Some(address.into()),
            ..Self::default()
        }
    }
}

/// A connected client whose namespace is known to exist, within the connect timeout.
pub async fn connect(args: &TemporalArgs) -> anyhow::Result<Client> {
    let timeout = stephook_direct::parse_bounded(
        args.connect_timeout.trim(),
        MIN_CONNECT_TIMEOUT,
        MAX_CONNECT_TIMEOUT,
    )
    .map_err(|e| anyhow!("STEPHOOK_TEMPORAL_CONNECT_TIMEOUT: {e} (--temporal-connect-timeout)"))?;
    let (connection_options, client_options) = options(args)?;
    let target = connection_options.target.clone();
    tokio::time::timeout(
        timeout,
        connect_and_check(connection_options, client_options),
    )
    .await
    .unwrap_or_else(|_| {
        Err(anyhow!(
            "TEMPORAL_ADDRESS: no answer from a Temporal server at {target} within {timeout:?} \
                 (--temporal-address; is something dropping the packets? \
                 STEPHOOK_TEMPORAL_CONNECT_TIMEOUT sets how long to wait)"
        ))
    })
}

async fn connect_and_check(
    connection_options: ConnectionOptions,
    client_options: ClientOptions,
) -> anyhow::Result<Client> {
    let target = connection_options.target.clone();
    let namespace = client_options.namespace.clone();
    let connection = Connection::connect(connection_options)
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| {
            format!(
                "TEMPORAL_ADDRESS: cannot reach a Temporal server at {target} (--temporal-address; \
                 `stephook dev` starts a local one)"
            )
        })?;
    let client = Client::new(connection, client_options).map_err(|e| anyhow!("{e}"))?;
    check_namespace(&client, &namespace, &target).await?;
    Ok(client)
}

/// The envconfig options with the flags applied.
pub fn options(args: &TemporalArgs) -> anyhow::Result<(ConnectionOptions, ClientOptions)> {
    let (mut connection, mut client) =
        ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
            // The SDK's error is not Send; its message is all we need.
            .map_err(|e| anyhow!("{e}"))
            .context(
                "Temporal client configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, \
                 TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_TLS*)",
            )?;
    if let Some(address) = args
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        connection.target = parse_address(address, connection.tls_options.is_some())?;
    }
    if let Some(namespace) = args
        .namespace
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        client.namespace = namespace.to_owned();
    }
    connection.grpc_compression = match args.grpc_compression {
        Compression::None => GrpcCompression::None,
        Compression::Gzip => GrpcCompression::Gzip,
    };
    Ok((connection, client))
}

/// `host:port` (as every Temporal tool takes it) or a full URL.
fn parse_address(address: &str, tls: bool) -> anyhow::Result<Url> {
    // `Url::parse("localhost:7233")` succeeds with `localhost` as the scheme: require a host.
    if let Ok(url) = Url::parse(address)
        && url.host().is_some()
    {
        return Ok(url);
    }
    let scheme = if tls { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{address}")).map_err(|e| {
        anyhow!(
            "TEMPORAL_ADDRESS: {address:?} is not host:port or a URL ({e}) (--temporal-address)"
        )
    })
}

async fn check_namespace(client: &Client, namespace: &str, target: &Url) -> anyhow::Result<()> {
    let request = DescribeNamespaceRequest {
        namespace: namespace.to_owned(),
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    match service.describe_namespace(Request::new(request)).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::NotFound => Err(anyhow!(
            "TEMPORAL_NAMESPACE: namespace {namespace:?} does not exist on {target} \
             (--temporal-namespace; create it with `temporal operator namespace create`)"
        )),
        Err(status) => Err(anyhow!(
            "TEMPORAL_NAMESPACE: cannot check namespace {namespace:?} on {target}: {}",
            status.message()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_accept_host_port_and_urls() {
        assert_eq!(
            parse_address("127.0.0.1:7233", false).unwrap().as_str(),
            "http://127.0.0.1:7233/"
        );
        assert_eq!(
            parse_address("temporal.example:7233", true)
                .unwrap()
                .scheme(),
            "https"
        );
        assert_eq!(
            parse_address("http://localhost:7233", true)
                .unwrap()
                .scheme(),
            "http"
        );
        assert!(parse_address("not a host:x", false).is_err());
    }
}
