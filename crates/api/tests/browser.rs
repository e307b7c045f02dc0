//! The console in real headless Chromium, driven over WebDriver (chromedriver + fantoccini), as an
//! operator works in it at 1280 × 800 and at 800 px: enter the token when asked; see the dead
//! deliveries, failed steps marked as such and the receiver's answer readable; filter by state,
//! by run and by date, with the view kept in the address bar across a reload; open a row to its
//! attempts and where each went; click Redeliver and see what was queued and what became of it;
//! and at both widths, no element overflows sideways. The loopback receiver gets the redelivery
//! with the same webhook-id. It always saves screenshots to the target directory; with
//! STEPHOOK_WRITE_SCREENSHOT=1 it also saves the 1280 px one as docs/console.png.
//! Skipped (and said so; a failure under CI=true) without chromium and chromedriver.

mod common;

use common::{BASE_MS, Db, Server, TOKEN, WAIT, seed_step};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stephook_core::StepStatus;
use stephook_store::testing;
use stephook_testkit::{Receiver, Reply};

const CHROMIUM: &str = "chromium";
const CHROMEDRIVER: &str = "chromedriver";
const SCREENSHOT_VAR: &str = "STEPHOOK_WRITE_SCREENSHOT";
/// The console refreshes every 3 s; a state change shows within a few refreshes.
const UI_WAIT: Duration = Duration::from_secs(20);
const DRIVER_START: Duration = Duration::from_secs(15);

/// chromedriver on a loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = stephook_core::free_loopback_port().expect("a free loopback port");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + DRIVER_START;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in Chromium")
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(UI_WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// The table is rebuilt on every refresh, so an element found a moment ago can be gone: find
/// and act again until it works or the wait runs out.
async fn retrying<T, F, Fut>(what: &str, mut act: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    let deadline = tokio::time::Instant::now() + UI_WAIT;
    loop {
        match act().await {
            Ok(value) => return value,
            Err(error) if tokio::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{what}: {error}"),
        }
    }
}

async fn click(client: &Client, css: &str) {
    retrying(&format!("click {css}"), || async move {
        client.find(Locator::Css(css)).await?.click().await
    })
    .await;
}

async fn text(client: &Client, css: &str) -> String {
    retrying(&format!("read {css}"), || async move {
        client.find(Locator::Css(css)).await?.text().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_redelivers_a_dead_delivery_in_chromium() {
    if !common::have(CHROMIUM, "--version") || !common::have(CHROMEDRIVER, "--version") {
        testing::skip(
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
        );
        return;
    }
    // Arrange: two dead notifications, three delivered, two pending (due in an hour).
    let Some(server) = Server::start(Db::Sqlite, Some(TOKEN)).await else {
        return;
    };
    // One endpoint throughout: a notification is only ever sent to the endpoint it is for.
    let receiver = Receiver::start(Reply::Status(400)).await;
    let dead = common::dead_deliveries_at(server.store(), &receiver, 2).await;
    receiver.set_reply(Reply::Status(200));
    let dispatcher = common::dispatcher(server.store(), &receiver);
    for i in 0..3 {
        let id = seed_step(
            server.store(),
            "agent-demo",
            "run-42",
            StepStatus::Success,
            BASE_MS + 100 + i,
        )
        .await;
        common::wait_for_state(server.store(), &id, "delivered").await;
    }
    receiver.wait_for(3, WAIT).await;
    for i in 0..2 {
        seed_pending(&server, BASE_MS + 200 + i).await;
    }
    let target = &dead[1];

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let client = browser(&driver, profile.path()).await;
    let result = drive(&client, &server, target.as_str()).await;
    let _ = client.close().await;
    result.expect("the console flow");

    // Assert: the receiver got the redelivery, with the step's webhook-id.
    let requests = receiver.wait_for(6, WAIT).await;
    let resent = requests
        .iter()
        .find(|r| r.step_id().as_deref() == Some(target.as_str()))
        .expect("the redelivered notification reached the receiver");
    assert_eq!(resent.header("webhook-id"), Some(target.as_str()));
    dispatcher.stop().await;
    server.stop().await;
}

/// A notification due in an hour: it stays pending while the test runs.
async fn seed_pending(server: &Server, created_at: i64) {
    const IN_AN_HOUR: std::time::Duration = std::time::Duration::from_secs(3_600);
    common::seed_step_due(
        server.store(),
        "agent-demo",
        "run-43",
        StepStatus::Cancelled,
        created_at,
        IN_AN_HOUR,
    )
    .await;
}

async fn drive(
    client: &Client,
    server: &Server,
    target: &str,
) -> Result<(), fantoccini::error::CmdError> {
    client.set_window_size(1280, 800).await?;
    client.goto(&format!("{}/", server.base)).await?;

    // The server has a token: the page asks for it once.
    let input = wait_for(client, "#token-form:not([hidden]) #token-input").await;
    input.send_keys(TOKEN).await?;
    click(client, "#token-form button[type=submit]").await;

    // The dead delivery is listed, and the counts are shown.
    let row = format!("tr.delivery[data-step-id='{target}']");
    wait_for(client, &format!("{row}[data-state='dead']")).await;
    assert_eq!(text(client, "#count-dead").await, "2");

    // A failed step and a cancelled one have marks of their own, apart from delivery states.
    let failed_mark = text(client, &format!("{row} .mark.failed")).await;
    assert!(
        failed_mark.contains("✗") && failed_mark.contains("failed"),
        "{failed_mark}"
    );
    wait_for(
        client,
        "tr.delivery[data-step-status='cancelled'] .mark.cancelled",
    )
    .await;
    wait_for(
        client,
        "tr.delivery[data-step-status='success'] .mark.success",
    )
    .await;

    // The receiver's answer reads as text, line breaks and all: no literal `\n`.
    let answer = text(client, &format!("{row} td.c-error")).await;
    assert!(answer.contains("no such hook"), "{answer}");
    assert!(
        !answer.contains("\\n"),
        "the escaped excerpt shows raw: {answer:?}"
    );

    // Filtering by state: only dead rows, kept in the address bar and across a reload.
    click(client, "button.count.dead").await;
    wait_for(client, "button.count.dead.active").await;
    wait_for(
        client,
        "#rows:not(:has(tr.delivery:not([data-state='dead'])))",
    )
    .await;
    assert!(
        client
            .current_url()
            .await?
            .query()
            .unwrap_or_default()
            .contains("state=dead")
    );
    client.refresh().await?;
    wait_for(client, "button.count.dead.active").await;
    wait_for(client, &format!("{row}[data-state='dead']")).await;
    assert_eq!(states(client).await?, json!(["dead", "dead"]));

    // Search by run id (the workflow id form works too), then a date range.
    click(client, "#clear-filters").await;
    set_filters(client, "agent-run-run-43", "", "").await?;
    wait_for(
        client,
        "#rows:not(:has(tr.delivery:not([data-step-status='cancelled'])))",
    )
    .await;
    assert_eq!(states(client).await?, json!(["pending", "pending"]));
    let shown_run = text(client, "tr.delivery td.c-step .note").await;
    assert!(
        shown_run.contains("run run-43") && shown_run.contains("agent-demo"),
        "{shown_run}"
    );
    // A date range: everything here was created on 2026-01-01 (UTC), so a range that ends the
    // minute before has nothing, and one that starts at it has everything.
    set_filters(client, "", "", "2025-12-31T12:00").await?;
    wait_for(client, "#empty:not([hidden])").await;
    let query = client
        .current_url()
        .await?
        .query()
        .unwrap_or_default()
        .to_owned();
    assert!(query.contains("to=2025-12-31T12%3A00"), "{query}");
    set_filters(client, "", "2025-12-31T12:00", "").await?;
    wait_for(client, &format!("{row}[data-state='dead']")).await;
    click(client, "#clear-filters").await;
    wait_for(client, &format!("{row}[data-state='dead']")).await;

    // Its row opens to its attempts: where each went (redacted) and what came back.
    click(client, &format!("{row} td.c-step")).await;
    let detail = format!("tr[data-detail-for='{target}']");
    wait_for(client, &detail).await;
    let shown = text(client, &detail).await;
    assert!(
        shown.contains("Attempts (1)")
            && shown.contains("400")
            && shown.contains("agent-dead")
            && shown.contains("/hooks/step-complete")
            && shown.contains("try again later"),
        "{shown}"
    );
    assert_no_horizontal_overflow(client, "1280 px").await?;
    screenshot(client, "console-1280.png", true).await?;

    // Redeliver it: the console says what it queued, then what became of it.
    click(client, &format!("{row} button.redeliver")).await;
    wait_for(client, "#notices li:first-child").await;
    let delivered = client
        .wait()
        .at_most(UI_WAIT)
        .for_element(Locator::XPath(&format!(
            "//ol[@id='notices']/li[contains(., '{target} delivered (HTTP 200)')]"
        )))
        .await;
    assert!(
        delivered.is_ok(),
        "no confirmation of what became of the redelivery"
    );
    wait_for(client, &format!("{row}[data-state='delivered']")).await;
    let kept = client
        .execute("return sessionStorage.getItem('stephook.apiToken')", vec![])
        .await?;
    assert_eq!(kept, json!(TOKEN), "the token is kept in session storage");

    // Usable at 800 px: every delivery is on screen, nothing overflows sideways.
    client.set_window_size(800, 900).await?;
    client.refresh().await?;
    wait_for(client, &format!("{row}[data-state='delivered']")).await;
    assert_no_horizontal_overflow(client, "800 px").await?;
    screenshot(client, "console-800.png", false).await?;
    Ok(())
}

async fn states(client: &Client) -> Result<serde_json::Value, fantoccini::error::CmdError> {
    client
        .execute(
            "return [...document.querySelectorAll('tr.delivery')].map(r => r.dataset.state)",
            vec![],
        )
        .await
}

/// Fills the search and date fields (as an operator would type them) and applies them.
async fn set_filters(
    client: &Client,
    search: &str,
    from: &str,
    to: &str,
) -> Result<(), fantoccini::error::CmdError> {
    client
        .execute(
            "document.getElementById('search').value = arguments[0];
             document.getElementById('from').value = arguments[1];
             document.getElementById('to').value = arguments[2];",
            vec![json!(search), json!(from), json!(to)],
        )
        .await?;
    click(client, "#filters button[type=submit]").await;
    Ok(())
}

/// Nothing on the page reaches past the window's right edge, and the page does not scroll
/// sideways.
async fn assert_no_horizontal_overflow(
    client: &Client,
    at: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let overflowing = client
        .execute(
            "const width = document.documentElement.clientWidth;
             const wide = [...document.querySelectorAll('body *')]
               .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > width + 1)
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                    (e.className ? '.' + String(e.className).split(' ').join('.') : '') +
                    ' right=' + Math.round(e.getBoundingClientRect().right));
             return { width, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10) };",
            vec![],
        )
        .await?;
    let width = overflowing["width"].as_f64().unwrap_or_default();
    let scroll = overflowing["scroll"].as_f64().unwrap_or_default();
    assert!(
        scroll <= width + 1.0 && overflowing["wide"].as_array().is_some_and(Vec::is_empty),
        "at {at} the console overflows sideways: {overflowing}"
    );
    Ok(())
}

/// Saves a screenshot under the target directory (and, when asked, the README's copy).
async fn screenshot(
    client: &Client,
    name: &str,
    readme: bool,
) -> Result<(), fantoccini::error::CmdError> {
    let png = client.screenshot().await?;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&out, &png).expect("write a screenshot");
    println!("screenshot {}", out.display());
    if readme && std::env::var(SCREENSHOT_VAR).is_ok_and(|v| v == "1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::create_dir_all(path.parent().expect("docs/")).expect("create docs/");
        std::fs::write(&path, png).expect("write docs/console.png");
        println!("wrote {}", path.display());
    }
    Ok(())
}
