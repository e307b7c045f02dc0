//! The console in real headless Chromium, driven over WebDriver (chromedriver + fantoccini):
//! enter the token when asked, see a dead delivery, open its attempts, click Redeliver, see it
//! become delivered, and check the loopback receiver got it with the same webhook-id. With
//! STEPHOOK_WRITE_SCREENSHOT=1 it saves the console to docs/console.png.
//! Skipped (and said so; a failure under CI=true) without chromium and chromedriver.

mod common;

use common::{BASE_MS, Db, Server, TOKEN, WAIT, seed_step};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::net::TcpListener;
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
        let port = free_port();
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1500,1080",
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
    client.goto(&format!("{}/", server.base)).await?;

    // The server has a token: the page asks for it once.
    let input = wait_for(client, "#token-form:not([hidden]) #token-input").await;
    input.send_keys(TOKEN).await?;
    click(client, "#token-form button[type=submit]").await;

    // The dead delivery is listed, and the counts are shown.
    let row = format!("tr.delivery[data-step-id='{target}']");
    wait_for(client, &format!("{row}[data-state='dead']")).await;
    assert_eq!(text(client, "#count-dead").await, "2");

    // The filter shows only dead rows.
    click(client, "button.count.dead").await;
    wait_for(client, "button.count.dead.active").await;
    wait_for(
        client,
        "#rows:not(:has(tr.delivery:not([data-state='dead'])))",
    )
    .await;
    let states = client
        .execute(
            "return [...document.querySelectorAll('tr.delivery')].map(r => r.dataset.state)",
            vec![],
        )
        .await?;
    assert_eq!(states, json!(["dead", "dead"]));
    click(client, "button.count[data-state='']").await;
    wait_for(client, "tr.delivery[data-state='delivered']").await;

    // Its row opens to its attempts and its step.
    click(client, &format!("{row} td.step")).await;
    let detail = format!("tr[data-detail-for='{target}']");
    wait_for(client, &detail).await;
    let shown = text(client, &detail).await;
    assert!(
        shown.contains("Attempts (1)") && shown.contains("400") && shown.contains("agent-dead"),
        "{shown}"
    );

    if std::env::var(SCREENSHOT_VAR).is_ok_and(|v| v == "1") {
        let png = client.screenshot().await?;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::create_dir_all(path.parent().expect("docs/")).expect("create docs/");
        std::fs::write(&path, png).expect("write docs/console.png");
        println!("wrote {}", path.display());
    }

    // Redeliver it; the dispatcher sends it and the row turns delivered.
    click(client, &format!("{row} button.redeliver")).await;
    wait_for(client, &format!("{row}[data-state='delivered']")).await;
    let kept = client
        .execute("return sessionStorage.getItem('stephook.apiToken')", vec![])
        .await?;
    assert_eq!(kept, json!(TOKEN), "the token is kept in session storage");
    Ok(())
}
