//! Reading a Prometheus text page over loopback: the dev server's and the measured worker's.

use anyhow::Context as _;

/// The page at `url`; `whose` names its owner in errors ("the dev server").
pub async fn fetch(url: &str, whose: &str) -> anyhow::Result<String> {
    reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("cannot read {whose}'s metrics at {url}"))?
        .text()
        .await
        .with_context(|| format!("cannot read {whose}'s metrics"))
}
