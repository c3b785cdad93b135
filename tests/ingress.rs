//! `POST /webhooks/github` through the real router on loopback: every fixture, and bad input.

mod common;

use std::time::Duration;

use common::{base_url, eventually, start_server, Backend, Delivery, TestDb, SECRET};
use hotfix_lane::ingress::signature::sign;

/// Every fixture with the event name GitHub sends it under.
const FIXTURES: &[(&str, &str)] = &[
    ("check_run", "completed.json"),
    ("check_run", "created.json"),
    ("check_run", "requested_action.json"),
    ("check_run", "rerequested.json"),
    ("check_suite", "completed.json"),
    ("check_suite", "requested.json"),
    ("check_suite", "rerequested.json"),
    ("installation", "created.json"),
    ("issue_comment", "created.json"),
    ("issue_comment", "created.with-installation.json"),
    ("issue_comment", "edited.json"),
    ("issues", "edited.json"),
    ("issues", "labeled.json"),
    ("issues", "opened.json"),
    ("merge_group", "checks_requested.json"),
    ("pull_request", "closed.json"),
    ("pull_request", "labeled.json"),
    ("pull_request", "opened.json"),
    ("pull_request", "reopened.json"),
    ("pull_request", "synchronize.json"),
    ("pull_request", "unlabeled.json"),
    ("pull_request_review", "submitted.json"),
    ("push", "payload.json"),
    ("push", "with-installation.json"),
    ("push", "with-new-branch.json"),
    ("status", "payload.json"),
    ("status", "with-installation.json"),
];

#[test]
fn every_fixture_is_covered() {
    let mut on_disk: Vec<String> = std::fs::read_dir(common::fixture_path("github"))
        .unwrap()
        .flat_map(|dir| {
            let dir = dir.unwrap().path();
            let event = dir.file_name().unwrap().to_string_lossy().to_string();
            std::fs::read_dir(&dir)
                .unwrap()
                .map(move |f| format!("{event}/{}", f.unwrap().file_name().to_string_lossy()))
        })
        .filter(|f| !f.starts_with("ping/"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|(e, f)| format!("{e}/{f}")).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

async fn fixtures_become_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db).await;
    let (client, base) = (reqwest::Client::new(), base_url(&server));
    for (i, (event, file)) in FIXTURES.iter().enumerate() {
        let delivery = Delivery::fixture(event, file, &format!("fixture-{i}"));
        let (status, body) = delivery.send(&client, &base).await;
        assert_eq!(status, 202, "{event}/{file}: {body}");
        let stored = server.store.delivery_by_forge_id("github", &delivery.id).await.unwrap().expect("stored");
        let envelope: serde_json::Value = serde_json::from_str(&stored).unwrap();
        insta::assert_json_snapshot!(format!("{event}__{}", file.trim_end_matches(".json")), envelope);
    }
    server.shutdown().await.unwrap();
}

async fn ping_is_answered_and_not_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db).await;
    let (client, base) = (reqwest::Client::new(), base_url(&server));
    for file in ["payload.json", "with-app_id.json"] {
        let (status, body) = Delivery::fixture("ping", file, file).send(&client, &base).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("ping")));
        // An App's or organization's hook pings without a repository (an App's, without a sender).
        let mut account = common::json_fixture(&format!("github/ping/{file}"));
        account.as_object_mut().unwrap().retain(|k, _| k != "repository" && k != "sender");
        let delivery = Delivery::new("ping", &format!("account-{file}"), serde_json::to_vec(&account).unwrap());
        let (status, body) = delivery.send(&client, &base).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("ping")), "{body}");
    }
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

async fn duplicate_delivery_is_stored_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db).await;
    let (client, base) = (reqwest::Client::new(), base_url(&server));
    let delivery = Delivery::fixture("pull_request", "labeled.json", "same-id");
    assert_eq!(delivery.send(&client, &base).await.0, 202);
    let (status, body) = delivery.send(&client, &base).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));
    assert_eq!(server.store.delivery_count().await.unwrap(), 1);
    let store = server.store.clone();
    eventually("the one job is done", || async { store.job_counts().await.unwrap().done == 1 }).await;
    assert_eq!(store.job_counts().await.unwrap().queued, 0);
    server.shutdown().await.unwrap();
}

on_both_backends!(fixtures_become_events, ping_is_answered_and_not_stored, duplicate_delivery_is_stored_once);

/// A server on SQLite for the refusal tests, which never reach the database.
async fn refusals() -> (TestDb, hotfix_lane::server::Running, reqwest::Client, String) {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = start_server(&db).await;
    let base = base_url(&server);
    (db, server, reqwest::Client::new(), base)
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    headers: &[(&str, String)],
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let mut req = client.post(format!("{base}/webhooks/github"));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.body(body).send().await.expect("request sent");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

/// A signature of the right form (so the body is read) that matches no body.
const WELL_FORMED: &str = "sha256=0000000000000000000000000000000000000000000000000000000000000000";

fn headers(event: &str, signature: Option<String>) -> Vec<(&'static str, String)> {
    let mut h = vec![("X-GitHub-Event", event.to_string()), ("X-GitHub-Delivery", format!("d-{}", fastrand::u64(..)))];
    if let Some(sig) = signature {
        h.push(("X-Hub-Signature-256", sig));
    }
    h
}

#[tokio::test]
async fn signatures_are_checked_before_anything_else() {
    let (_db, server, client, base) = refusals().await;
    let body = common::fixture("github/pull_request/labeled.json");
    let good = sign(SECRET.as_bytes(), &body);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no signature", None),
        ("wrong secret", Some(sign(b"not-the-secret", &body))),
        ("signature of other bytes", Some(sign(SECRET.as_bytes(), b"{}"))),
        ("sha1 only", Some(format!("sha1={}", &good[7..47]))),
        ("hex too short", Some(good[..good.len() - 2].to_string())),
        ("hex too long", Some(format!("{good}00"))),
        ("uppercase hex", Some(format!("sha256={}", good[7..].to_uppercase()))),
        ("no prefix", Some(good[7..].to_string())),
    ];
    for (what, sig) in cases {
        let mut h = headers("pull_request", None);
        if let Some(sig) = sig {
            // `sha1 only` sends the legacy header instead of the sha256 one.
            let name = if sig.starts_with("sha1=") { "X-Hub-Signature" } else { "X-Hub-Signature-256" };
            h.push((name, sig));
        }
        let (status, text) = post(&client, &base, &h, body.clone()).await;
        assert_eq!(status, 401, "{what}: {text}");
        assert!(text.contains("unauthorized"), "{what}: {text}");
    }
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_get_a_reason() {
    let (_db, server, client, base) = refusals().await;
    let signed = |body: &[u8]| Some(sign(SECRET.as_bytes(), body));

    let not_json = b"this is not json".to_vec();
    let (status, text) = post(&client, &base, &headers("pull_request", signed(&not_json)), not_json).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not valid JSON"), "{text}");

    let wrong_shape = br#"{"action":"opened","pull_request":{"number":"seven"}}"#.to_vec();
    let (status, text) = post(&client, &base, &headers("pull_request", signed(&wrong_shape)), wrong_shape).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("`pull_request` payload has the wrong shape"), "{text}");

    let body = common::fixture("github/pull_request/labeled.json");
    let mut no_event = headers("pull_request", signed(&body));
    no_event.retain(|(n, _)| *n != "X-GitHub-Event");
    let (status, text) = post(&client, &base, &no_event, body.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("missing X-GitHub-Event"), "{text}");

    let mut no_id = headers("pull_request", signed(&body));
    no_id.retain(|(n, _)| *n != "X-GitHub-Delivery");
    let (status, text) = post(&client, &base, &no_id, body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("missing X-GitHub-Delivery"), "{text}");

    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_events_and_actions_are_acknowledged_ignored_and_counted() {
    let (_db, server, client, base) = refusals().await;
    let body = br#"{"action":"created","starred_at":null}"#.to_vec();
    let (status, text) = post(&client, &base, &headers("star", Some(sign(SECRET.as_bytes(), &body))), body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ignored"), "{text}");

    // An action GitHub may add tomorrow: the event still parses, and is ignored.
    let mut pr: serde_json::Value =
        serde_json::from_slice(&common::fixture("github/pull_request/labeled.json")).unwrap();
    pr["action"] = "auto_merge_enabled".into();
    let body = serde_json::to_vec(&pr).unwrap();
    let (status, text) =
        post(&client, &base, &headers("pull_request", Some(sign(SECRET.as_bytes(), &body))), body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ignored"), "{text}");

    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    // Only event names the lane knows become labels: a sender cannot mint series.
    assert!(
        metrics.contains(r#"hotfix_lane_deliveries_total{forge="github",event="other",outcome="ignored"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"event="star""#), "{metrics}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_reading_them_whole() {
    let (_db, server, client, base) = refusals().await;
    let big = vec![b' '; 30 * 1024 * 1024];
    // Declared length: refused before a byte of the body is read.
    let (status, _) = post(&client, &base, &headers("push", Some(WELL_FORMED.into())), big.clone()).await;
    assert_eq!(status, 413);
    // Streamed without a length: refused once the limit is crossed, not after reading it all.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(
        format!("POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\nX-Hub-Signature-256: {WELL_FORMED}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let mut sent = 0;
    for _ in 0..30 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).await.is_err() {
            break; // the server hung up: it stopped reading
        }
        sent += 1;
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "after {sent} MiB: {answer}");
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_client_times_out_while_others_are_served() {
    let (_db, server, client, base) = refusals().await;
    // Declares 1000 bytes, sends 10, then stalls.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    slow.write_all(
        format!("POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: {WELL_FORMED}\r\nContent-Length: 1000\r\n\r\n0123456789").as_bytes(),
    )
    .await
    .unwrap();

    let delivery = Delivery::fixture("pull_request", "opened.json", "while-slow");
    assert_eq!(delivery.send(&client, &base).await.0, 202, "others are served meanwhile");

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the slow request is cut off by the body timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_readiness() {
    let (_db, server, client, base) = refusals().await;
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"hotfix_lane_jobs{state="queued"} 0"#), "{metrics}");
    server.shutdown().await.unwrap();
}
