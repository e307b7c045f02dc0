//! The HTTP API against a real server on a loopback port, over real SQLite and (when
//! STEPHOOK_TEST_POSTGRES_URL is set) real PostgreSQL: every endpoint, auth, error shapes,
//! keyset paging both ways, and redelivery that really re-sends.

mod common;

use common::{BASE_MS, Db, Server, TOKEN, WAIT, dead_deliveries, seed_step, wait_for_state};
use serde_json::Value;
use std::collections::HashSet;
use stephook_core::{StepId, StepStatus};
use stephook_testkit::{Receiver, Reply};

/// Runs one check on SQLite and on PostgreSQL (skipped, and said so, without one).
macro_rules! on_both_databases {
    ($check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$check(super::Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$check(super::Db::Postgres).await;
            }
        }
    };
}

on_both_databases!(health_openapi_and_console);
on_both_databases!(auth_missing_wrong_and_right_token);
on_both_databases!(retrieve_step_and_its_errors);
on_both_databases!(step_metrics);
on_both_databases!(list_steps_pages_every_step_once_both_ways);
on_both_databases!(list_steps_filters_and_bad_parameters);
on_both_databases!(deliveries_list_counts_detail_and_paging);
on_both_databases!(redeliver_one_resends_with_the_same_webhook_id);
on_both_databases!(redeliver_all_dead_is_idempotent);
on_both_databases!(issue_11_5_a_double_click_redelivers_once);
on_both_databases!(issue_11_7_foreign_hosts_and_cross_site_writes_are_refused);
on_both_databases!(issue_11_8_a_row_waits_for_its_own_endpoint_until_moved);

fn ids_of(page: &Value) -> Vec<String> {
    page.as_array()
        .expect("an array of steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn health_openapi_and_console(db: Db) {
    let Some(server) = Server::start(db, Some(TOKEN)).await else {
        return;
    };

    // Health needs no token.
    let (status, body) = common::json_of(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/steps/{step_id}",
        "/v1/steps/",
        "/v1/steps/{step_id}/metrics",
        "/v1/deliveries",
        "/v1/deliveries/counts",
        "/v1/deliveries/{step_id}",
        "/v1/deliveries/{step_id}/redeliver",
        "/v1/deliveries/redeliver",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi.json lacks {path}");
    }
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["LettaStep"]["properties"]["provider_name"].is_object());
    assert!(schemas["DeliveryView"]["properties"]["last_http_status"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The console and its files are served without a token (the page asks for it).
    for (path, kind) in [
        ("/", "text/html"),
        ("/console.js", "text/javascript"),
        ("/console.css", "text/css"),
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(!response.text().await.unwrap().is_empty());
    }

    // A store that no longer answers makes the health check 503.
    server.store().close().await;
    let (status, body) = common::json_of(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unavailable"))
    );
    server.stop().await;
}

async fn auth_missing_wrong_and_right_token(db: Db) {
    let Some(server) = Server::start(db, Some(TOKEN)).await else {
        return;
    };
    let id = seed_step(server.store(), "agent", "run", StepStatus::Success, BASE_MS).await;
    let path = format!("/v1/steps/{id}");

    for (label, request) in [
        ("missing", server.http.get(server.url(&path))),
        (
            "wrong",
            server
                .http
                .get(server.url(&path))
                .bearer_auth("not-the-token"),
        ),
        (
            "prefix",
            server.http.get(server.url(&path)).bearer_auth(&TOKEN[..10]),
        ),
        (
            "scheme",
            server
                .http
                .get(server.url(&path))
                .header("authorization", format!("Basic {TOKEN}")),
        ),
        (
            "deliveries",
            server
                .http
                .post(server.url(&format!("/v1/deliveries/{id}/redeliver"))),
        ),
        ("openapi", server.http.get(server.url("/openapi.json"))),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{label}");
        let (status, body) = common::json_of(response).await;
        assert_eq!(status, 401, "{label}");
        assert!(
            body["detail"].as_str().unwrap().contains("token"),
            "{label}: {body}"
        );
    }

    let (status, body) = server.get(&path).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(id.as_str())));
    server.stop().await;
}

async fn retrieve_step_and_its_errors(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let id = seed_step(
        server.store(),
        "agent-7",
        "run-7",
        StepStatus::Failed,
        BASE_MS,
    )
    .await;

    let (status, step) = server.get(&format!("/v1/steps/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(step["id"], id.as_str());
    assert_eq!(step["agent_id"], "agent-7");
    assert_eq!(step["run_id"], "run-7");
    assert_eq!(step["status"], "failed");
    assert_eq!(step["model"], "gpt-4o-mini");
    assert_eq!(step["provider_name"], "openai");
    assert_eq!(
        (
            step["prompt_tokens"].as_i64(),
            step["completion_tokens"].as_i64(),
            step["total_tokens"].as_i64()
        ),
        (Some(11), Some(7), Some(18))
    );
    assert_eq!(step["stop_reason"], "end_turn");
    assert_eq!(step["error_type"], "ValueError");
    assert_eq!(step["error_data"]["message"], "boom");
    assert_eq!(step["tags"], serde_json::json!([]));
    assert_eq!(step["created_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(step["completed_at"], "2026-01-01T00:00:00.005Z");
    assert_eq!(
        (step["step_ms"].as_i64(), step["model_call_ms"].as_i64()),
        (Some(42), Some(30))
    );
    // Letta fields stephook has no value for are present and null.
    for field in [
        "provider_id",
        "trace_id",
        "feedback",
        "context_window_limit",
        "project_id",
    ] {
        assert!(
            step.get(field).is_some_and(Value::is_null),
            "{field}: {step}"
        );
    }

    let unknown = StepId::new_random();
    let (status, body) = server.get(&format!("/v1/steps/{unknown}")).await;
    assert_eq!(status, 404);
    assert!(
        body["detail"].as_str().unwrap().contains(unknown.as_str()),
        "{body}"
    );

    for bad in ["nope", "step-123", "01234567-89ab-cdef-0123-456789abcdef"] {
        let (status, body) = server.get(&format!("/v1/steps/{bad}")).await;
        assert_eq!(status, 422, "{bad}");
        assert!(
            body["detail"].as_str().unwrap().contains("step-<uuid>"),
            "{body}"
        );
    }
    server.stop().await;
}

async fn step_metrics(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let id = seed_step(server.store(), "agent", "run", StepStatus::Success, BASE_MS).await;
    let (status, metrics) = server.get(&format!("/v1/steps/{id}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(metrics["id"], id.as_str());
    assert_eq!(metrics["step_ms"], 42);
    assert_eq!(metrics["step_ns"], 42_000_000);
    assert_eq!(metrics["llm_request_ns"], 30_000_000);
    assert!(metrics["tool_execution_ns"].is_null());

    // A step without recorded metrics, and no step at all: 404.
    let bare = StepId::new_random();
    server
        .store()
        .insert_step(&stephook_core::Step::pending(bare.clone(), "agent", None))
        .await
        .unwrap();
    assert_eq!(
        server.get(&format!("/v1/steps/{bare}/metrics")).await.0,
        404
    );
    assert_eq!(
        server
            .get(&format!("/v1/steps/{}/metrics", StepId::new_random()))
            .await
            .0,
        404
    );
    assert_eq!(server.get("/v1/steps/x/metrics").await.0, 422);
    server.stop().await;
}

/// 23 steps in groups sharing a timestamp, paged 5 at a time.
const PAGED_STEPS: usize = 23;
const PAGE: usize = 5;

async fn list_steps_pages_every_step_once_both_ways(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let mut seeded = Vec::new();
    for i in 0..PAGED_STEPS {
        // Four steps per millisecond: pages must break ties on the id.
        let created_at = BASE_MS + (i / 4) as i64;
        let id = seed_step(
            server.store(),
            "agent-p",
            "run-p",
            StepStatus::Success,
            created_at,
        )
        .await;
        seeded.push((created_at, id.to_string()));
    }
    let mut ascending = seeded.clone();
    ascending.sort();
    let ascending: Vec<String> = ascending.into_iter().map(|(_, id)| id).collect();
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();

    for (order, expected) in [("asc", &ascending), ("desc", &descending)] {
        // Forwards with `after`, as Letta's clients page.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let after = cursor
                .as_ref()
                .map(|c| format!("&after={c}"))
                .unwrap_or_default();
            let (status, page) = server
                .get(&format!("/v1/steps/?order={order}&limit={PAGE}{after}"))
                .await;
            assert_eq!(status, 200, "{page}");
            let ids = ids_of(&page);
            assert!(ids.len() <= PAGE);
            if ids.is_empty() {
                break;
            }
            pages += 1;
            cursor = ids.last().cloned();
            seen.extend(ids);
        }
        assert_eq!(pages, PAGED_STEPS.div_ceil(PAGE), "{order}");
        assert_eq!(&seen, expected, "{order}: forward pages");

        // Backwards with `before` from the last step: each page is in the requested order and
        // holds the steps closest to the cursor.
        let mut back: Vec<String> = vec![expected[PAGED_STEPS - 1].clone()];
        loop {
            let (status, page) = server
                .get(&format!(
                    "/v1/steps?order={order}&limit={PAGE}&before={}",
                    back[0]
                ))
                .await;
            assert_eq!(status, 200);
            let ids = ids_of(&page);
            if ids.is_empty() {
                break;
            }
            back.splice(0..0, ids);
        }
        assert_eq!(&back, expected, "{order}: backward pages");
        let unique: HashSet<&String> = back.iter().collect();
        assert_eq!(unique.len(), PAGED_STEPS);
    }

    // Default: newest first, 50 at most.
    let (_, page) = server.get("/v1/steps").await;
    assert_eq!(ids_of(&page), descending);
    server.stop().await;
}

async fn list_steps_filters_and_bad_parameters(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let store = server.store();
    let a = seed_step(store, "agent-a", "run-1", StepStatus::Success, BASE_MS).await;
    let b = seed_step(
        store,
        "agent-b",
        "run-2",
        StepStatus::Failed,
        BASE_MS + 60_000,
    )
    .await;
    let c = seed_step(
        store,
        "agent-a",
        "run-2",
        StepStatus::Cancelled,
        BASE_MS + 120_000,
    )
    .await;

    for (query, expected) in [
        ("agent_id=agent-a", vec![&c, &a]),
        ("run_id=run-2", vec![&c, &b]),
        ("status=failed", vec![&b]),
        ("model=gpt-4o-mini&order=asc", vec![&a, &b, &c]),
        ("model=other", vec![]),
        ("start_date=2026-01-01T00:01:00Z", vec![&c, &b]),
        ("end_date=2026-01-01T00:01:00Z", vec![&a]),
        (
            "start_date=2025-12-31T16:00:30-08:00&end_date=2026-01-01T00:02:00Z",
            vec![&b],
        ),
        ("limit=1", vec![&c]),
        ("limit=5000", vec![&c, &b, &a]),
        ("agent_id=agent-a&run_id=run-2&status=cancelled", vec![&c]),
    ] {
        let (status, page) = server.get(&format!("/v1/steps/?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        let expected: Vec<String> = expected.into_iter().map(ToString::to_string).collect();
        assert_eq!(ids_of(&page), expected, "{query}");
    }

    for query in [
        "limit=0",
        "limit=ten",
        "order=sideways",
        "status=done",
        "start_date=yesterday",
        "after=nope",
        "after=x&before=y",
    ] {
        let (status, body) = server.get(&format!("/v1/steps/?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body["detail"].is_string(), "{query}: {body}");
    }
    let (status, body) = server
        .get(&format!("/v1/steps/?after={}", StepId::new_random()))
        .await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}

async fn deliveries_list_counts_detail_and_paging(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let dead = dead_deliveries(server.store(), 2).await;
    let mut pending = Vec::new();
    for i in 0..5 {
        pending.push(
            seed_step(
                server.store(),
                "agent",
                "run",
                StepStatus::Success,
                BASE_MS + 1000 + i,
            )
            .await,
        );
    }

    let (status, counts) = server.get("/v1/deliveries/counts").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            counts["pending"].as_i64(),
            counts["dead"].as_i64(),
            counts["delivered"].as_i64(),
            counts["retrying"].as_i64(),
            counts["total"].as_i64()
        ),
        (Some(5), Some(2), Some(0), Some(0), Some(7))
    );

    // Every delivery exactly once, across pages of 3.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (status, page) = server.get(&format!("/v1/deliveries?limit=3{after}")).await;
        assert_eq!(status, 200, "{page}");
        let rows = page["deliveries"].as_array().unwrap();
        assert!(rows.len() <= 3);
        seen.extend(
            rows.iter()
                .map(|d| d["step_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

    let (_, page) = server.get("/v1/deliveries?state=dead").await;
    let rows = page["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let row = &rows[0];
    assert_eq!(row["state"], "dead");
    assert_eq!(row["step_status"], "failed");
    assert_eq!(row["source"], "temporal");
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["last_http_status"], 400);
    assert!(row["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(page["next_cursor"].is_null());

    let (_, page) = server
        .get(&format!("/v1/deliveries?step_id={}", pending[0]))
        .await;
    assert_eq!(page["deliveries"][0]["state"], "pending");

    let (status, detail) = server.get(&format!("/v1/deliveries/{}", dead[0])).await;
    assert_eq!(status, 200);
    assert_eq!(detail["state"], "dead");
    let history = detail["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0]["path"].as_str(),
            history[0]["http_status"].as_i64()
        ),
        (Some("dispatcher"), Some(400))
    );

    assert_eq!(
        server
            .get(&format!("/v1/deliveries/{}", StepId::new_random()))
            .await
            .0,
        404
    );
    assert_eq!(server.get("/v1/deliveries/nope").await.0, 422);
    assert_eq!(server.get("/v1/deliveries?state=lost").await.0, 422);
    // Issue 12, 8: `failed` (the old name of `retrying`) answered 200 with an empty list.
    let (refused, body) = server.get("/v1/deliveries?state=failed").await;
    assert_eq!(refused, 422, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("retrying") && detail.contains("dead"),
        "{detail}"
    );
    assert_eq!(
        server.get("/v1/deliveries?created_after=yesterday").await.0,
        422
    );
    // Filters by run (both forms of its id) and by creation time.
    let (_, by_run) = server.get("/v1/deliveries?run_id=agent-run-run-dead").await;
    assert_eq!(
        by_run["deliveries"].as_array().map(Vec::len),
        Some(2),
        "{by_run}"
    );
    let (_, none) = server
        .get("/v1/deliveries?created_before=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(
        none["deliveries"].as_array().map(Vec::len),
        Some(0),
        "{none}"
    );
    assert_eq!(server.get("/v1/deliveries?limit=0").await.0, 422);
    assert_eq!(
        server
            .get(&format!("/v1/deliveries?cursor={}", StepId::new_random()))
            .await
            .0,
        404
    );
    server.stop().await;
}

async fn redeliver_one_resends_with_the_same_webhook_id(db: Db) {
    let Some(server) = Server::start(db, Some(TOKEN)).await else {
        return;
    };
    let receiver = Receiver::start(Reply::Status(400)).await;
    let dispatcher = common::dispatcher(server.store(), &receiver);
    let id = seed_step(server.store(), "agent", "run", StepStatus::Success, BASE_MS).await;
    wait_for_state(server.store(), &id, "dead").await;
    receiver.set_reply(Reply::Status(200));

    let (status, answer) = server.post(&format!("/v1/deliveries/{id}/redeliver")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["count"], 1);
    assert_eq!(answer["queued"], serde_json::json!([id.as_str()]));

    let requests = receiver.wait_for(2, WAIT).await;
    assert_eq!(requests.len(), 2);
    let webhook_ids: Vec<_> = requests
        .iter()
        .map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(webhook_ids[0].as_deref(), Some(id.as_str()));
    assert_eq!(
        webhook_ids[0], webhook_ids[1],
        "a redelivery keeps the webhook-id"
    );
    wait_for_state(server.store(), &id, "delivered").await;

    let (_, detail) = server.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(detail["state"], "delivered");
    assert!(detail["delivered_at"].is_string());
    let outcomes: Vec<_> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["http_status"].as_i64())
        .collect();
    assert_eq!(
        outcomes,
        vec![Some(400), Some(200)],
        "the history is kept across the redelivery"
    );

    // No such step: 404; a step still pending has nothing to notify: 409; malformed: 422.
    assert_eq!(
        server
            .post(&format!(
                "/v1/deliveries/{}/redeliver",
                StepId::new_random()
            ))
            .await
            .0,
        404
    );
    let pending = StepId::new_random();
    server
        .store()
        .insert_step(&stephook_core::Step::pending(
            pending.clone(),
            "agent",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        server
            .post(&format!("/v1/deliveries/{pending}/redeliver"))
            .await
            .0,
        409
    );
    assert_eq!(server.post("/v1/deliveries/nope/redeliver").await.0, 422);
    dispatcher.stop().await;
    server.stop().await;
}

async fn redeliver_all_dead_is_idempotent(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let dead = dead_deliveries(server.store(), 3).await;

    let (status, answer) = server.post("/v1/deliveries/redeliver?state=dead").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["count"], 3);
    let mut queued: Vec<String> = answer["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    queued.sort();
    let mut expected: Vec<String> = dead.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(queued, expected);
    assert_eq!(answer["truncated"], false);

    // Nothing dead any more: a repeat queues nothing.
    let (_, again) = server.post("/v1/deliveries/redeliver?state=dead").await;
    assert_eq!(again["count"], 0);
    let (_, counts) = server.get("/v1/deliveries/counts").await;
    assert_eq!(
        (counts["pending"].as_i64(), counts["dead"].as_i64()),
        (Some(3), Some(0))
    );

    assert_eq!(
        server
            .post("/v1/deliveries/redeliver?state=delivered")
            .await
            .0,
        422
    );
    assert_eq!(server.post("/v1/deliveries/redeliver").await.0, 422);
    server.stop().await;
}

/// Issue 11, 5: a double click in the console re-queued a row twice (the second reset the
/// claim of the dispatcher already sending it). The second click now changes nothing, and says
/// so.
async fn issue_11_5_a_double_click_redelivers_once(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let dead = dead_deliveries(server.store(), 1).await;
    let path = format!("/v1/deliveries/{}/redeliver", dead[0]);

    let (_, first) = server.post(&path).await;
    let (status, second) = server.post(&path).await;

    assert_eq!(first["count"], 1, "{first}");
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["count"], 0, "{second}");
    assert_eq!(second["unchanged"][0]["reason"], "already_queued");
    assert_eq!(second["unchanged"][0]["step_id"], dead[0].as_str());
    server.stop().await;
}

/// Issue 11, 7: without a token, any web page could make the visitor's browser POST
/// `/v1/deliveries/redeliver?state=dead` (a form needs no preflight), and read `/v1/steps`
/// through DNS rebinding. A foreign `Host` and a cross-site write are now refused; the
/// console's own requests still pass.
async fn issue_11_7_foreign_hosts_and_cross_site_writes_are_refused(db: Db) {
    let Some(server) = Server::start(db, None).await else {
        return;
    };
    let dead = dead_deliveries(server.store(), 2).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let redeliver = server.url("/v1/deliveries/redeliver?state=dead");
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("request");
        common::json_of(response).await
    };

    // DNS rebinding: the page's own name resolves to 127.0.0.1.
    let (rebound, body) = send(
        server
            .http
            .get(server.url("/v1/steps/"))
            .header("host", format!("attacker.example:{port}")),
    )
    .await;
    assert_eq!(rebound, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("STEPHOOK_API_ALLOWED_HOSTS")
    );
    // A form posted from another site: the browser says so in Origin and Sec-Fetch-Site.
    let (from_origin, _) = send(
        server
            .http
            .post(&redeliver)
            .header("origin", "https://attacker.example"),
    )
    .await;
    let (from_site, _) = send(
        server
            .http
            .post(&redeliver)
            .header("sec-fetch-site", "cross-site"),
    )
    .await;
    let (from_localhost_page, _) = send(
        server
            .http
            .post(&redeliver)
            .header("origin", "http://localhost:3000")
            .header("sec-fetch-site", "same-site"),
    )
    .await;
    assert_eq!(
        (from_origin, from_site, from_localhost_page),
        (403, 403, 403)
    );
    for id in &dead {
        let row = server.store().delivery(id).await.unwrap().unwrap();
        assert_eq!(row.state.as_str(), "dead", "nothing was re-sent");
    }

    // The console's own request (same origin) and plain clients pass.
    let (own, answer) = send(
        server
            .http
            .post(&redeliver)
            .header("origin", format!("http://127.0.0.1:{port}"))
            .header("sec-fetch-site", "same-origin"),
    )
    .await;
    assert_eq!((own, answer["count"].as_i64()), (200, Some(2)), "{answer}");
    let (by_name, _) = send(
        server
            .http
            .get(server.url("/v1/deliveries/counts"))
            .header("host", format!("localhost:{port}")),
    )
    .await;
    assert_eq!(by_name, 200);
    let console = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(console.status(), 200);
    server.stop().await;
}

/// Issue 11, 8: a row was delivered by whichever dispatcher claimed it, whatever endpoint its
/// step was committed for, and nothing showed where it went. Now a row keeps its endpoint, is
/// shown waiting for it while no dispatcher serves it, and moves only when asked to.
async fn issue_11_8_a_row_waits_for_its_own_endpoint_until_moved(db: Db) {
    let current = "http://127.0.0.1:9/current-hooks";
    let Some(server) = Server::start_sending_to(db, current).await else {
        return;
    };
    let id = common::seed_step_for(
        server.store(),
        "http://127.0.0.1:9/old-hooks?token=old-s3cret",
    )
    .await;

    let (_, counts) = server.get("/v1/deliveries/counts").await;
    let (_, page) = server.get("/v1/deliveries").await;
    let row = &page["deliveries"][0];

    assert_eq!(counts["waiting_unserved"], 1, "{counts}");
    assert_eq!(
        row["endpoint"],
        "http://127.0.0.1:9/old-hooks?token=REDACTED"
    );
    assert_eq!(row["endpoint_served"], false);
    assert!(!page.to_string().contains("old-s3cret"));
    // Re-queued in place: it stays with its endpoint.
    let (_, kept) = server.post(&format!("/v1/deliveries/{id}/redeliver")).await;
    assert_eq!(kept["unchanged"][0]["reason"], "already_queued", "{kept}");

    // Moved, explicitly.
    let (status, moved) = server
        .post(&format!(
            "/v1/deliveries/{id}/redeliver?to_current_endpoint=true"
        ))
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (moved["count"].as_i64(), moved["endpoint"].as_str()),
        (Some(1), Some(current))
    );
    let (_, detail) = server.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(detail["endpoint"], current);

    // A server with no URL of its own has nowhere to move it.
    let Some(plain) = Server::start(Db::Sqlite, None).await else {
        return;
    };
    let other = common::seed_step_for(plain.store(), "http://127.0.0.1:9/x").await;
    let (refused, body) = plain
        .post(&format!(
            "/v1/deliveries/{other}/redeliver?to_current_endpoint=true"
        ))
        .await;
    assert_eq!(refused, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("STEP_COMPLETE_WEBHOOK")
    );
    plain.stop().await;
    server.stop().await;
}
