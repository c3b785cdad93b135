//! `POST /webhooks/gitlab` through the real router on loopback: every fixture, deduplication,
//! both ways of authenticating, and what is ignored rather than refused.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::gitlab_hook::{now_secs, Hook, OTHER_SIGNING_TOKEN, ROTATED_TOKEN, SIGNING_TOKEN, TOKEN};
use common::{base_url, eventually, start_server_with, Backend, TestDb};
use hotfix_lane::clock::SystemClock;
use hotfix_lane::lane::event::Envelope;
use hotfix_lane::server::{GitLabSettings, Running};
use hotfix_lane::store::DELIVERY_JOB;
use sha2::{Digest, Sha256};

/// Every fixture, with the ordering key its delivery's job must carry.
const FIXTURES: &[(&str, &str)] = &[
    ("issue/open.json", "gitlab:4861503:issue:1"),
    ("issue/update.labels.json", "gitlab:4861503:issue:1"),
    ("merge_request/close.json", "gitlab:4861503:pr:1"),
    ("merge_request/merge.json", "gitlab:4861503:pr:1"),
    ("merge_request/open.json", "gitlab:4861503:pr:1"),
    ("merge_request/open.with-label-changes.json", "gitlab:1:pr:1"),
    ("merge_request/reopen.json", "gitlab:4861503:pr:1"),
    ("merge_request/update.draft-toggle.json", "gitlab:44067058:pr:3"),
    ("merge_request/update.json", "gitlab:2:pr:2"),
    ("note/merge_request.diff-note.json", "gitlab:4861503:pr:1"),
    ("note/merge_request.json", "gitlab:4861503:pr:1"),
    ("pipeline/success.json", "gitlab:1:pr:1"),
    ("push/push.json", "gitlab:4861503:ref:refs/heads/master"),
];

fn gitlab(webhook_tokens: &[&str], signing_tokens: &[&str]) -> GitLabSettings {
    GitLabSettings {
        url: "http://127.0.0.1:9".into(),
        token: None,
        webhook_tokens: webhook_tokens.iter().map(|t| t.to_string()).collect(),
        signing_tokens: signing_tokens.iter().map(|t| t.to_string()).collect(),
    }
}

async fn server_with(db: &TestDb, gitlab: Option<GitLabSettings>) -> (Running, reqwest::Client, String) {
    let mut settings = common::settings(db);
    settings.gitlab = gitlab;
    let server = start_server_with(settings, Arc::new(SystemClock)).await;
    let base = base_url(&server);
    (server, reqwest::Client::new(), base)
}

/// A server that takes `X-Gitlab-Token` (two tokens: a rotation in progress).
async fn token_server(db: &TestDb) -> (Running, reqwest::Client, String) {
    server_with(db, Some(gitlab(&[TOKEN, ROTATED_TOKEN], &[]))).await
}

/// A server that requires signatures (and also knows a secret token, which is not enough).
async fn signing_server(db: &TestDb) -> (Running, reqwest::Client, String) {
    server_with(db, Some(gitlab(&[TOKEN], &[SIGNING_TOKEN]))).await
}

fn outcome(body: &serde_json::Value) -> Option<&str> {
    body["outcome"].as_str()
}

async fn stored(server: &Running, delivery_id: &str) -> Option<Envelope> {
    let json = server.store.delivery_by_forge_id("gitlab", delivery_id).await.unwrap()?;
    Some(serde_json::from_str(&json).unwrap())
}

/// The ordering keys of the deliveries' jobs (not of the jobs those go on to make), in order.
async fn ordering_keys(server: &Running) -> Vec<String> {
    // By id: a job read while it moves from one state to the next shows up in both.
    let mut keys = std::collections::BTreeMap::new();
    for state in ["queued", "running", "done", "dead"] {
        let jobs = server.store.jobs_in_state(state).await.unwrap().into_iter();
        keys.extend(jobs.filter(|j| j.kind == DELIVERY_JOB).map(|j| (j.id, j.ordering_key)));
    }
    keys.into_values().collect()
}

#[test]
fn every_fixture_is_covered() {
    let root = common::fixture_path("gitlab");
    let mut on_disk: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|dir| {
            let dir = dir.unwrap().path();
            let kind = dir.file_name().unwrap().to_string_lossy().to_string();
            std::fs::read_dir(&dir)
                .unwrap()
                .map(move |f| format!("{kind}/{}", f.unwrap().file_name().to_string_lossy()))
        })
        .collect();
    on_disk.sort();
    let listed: Vec<String> = FIXTURES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed);
}

async fn every_fixture_is_stored_with_its_ordering_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (server, client, base) = token_server(&db).await;
    for (i, (file, _)) in FIXTURES.iter().enumerate() {
        let id = format!("idem-{i}");
        let (status, body) = Hook::fixture(file, &id).token(TOKEN).send(&client, &base).await;
        assert_eq!((status, outcome(&body)), (202, Some("accepted")), "{file}: {body}");
        let envelope = stored(&server, &id).await.unwrap_or_else(|| panic!("{file} stored under its key"));
        assert_eq!(envelope.forge.as_str(), "gitlab", "{file}");
    }
    assert_eq!(server.store.delivery_count().await.unwrap(), FIXTURES.len() as i64);
    let merge = stored(&server, "idem-3").await.unwrap();
    assert_eq!(merge.repo.as_ref().unwrap().full_name, "gitlab-org/hello-world");
    assert_eq!(merge.sender.login, "sytses");
    let expected: Vec<String> = FIXTURES.iter().map(|(_, key)| key.to_string()).collect();
    // A job retried between two reads of the states can be missed by one read.
    eventually("every delivery's job is seen", || async { ordering_keys(&server).await.len() == FIXTURES.len() }).await;
    assert_eq!(ordering_keys(&server).await, expected, "one job per delivery, in delivery order");
    server.shutdown().await.unwrap();
}

async fn a_resend_with_the_same_idempotency_key_is_stored_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (server, client, base) = token_server(&db).await;
    let hook = Hook::fixture("merge_request/update.json", "5f6a0b1c-resend").token(TOKEN);
    assert_eq!(hook.send(&client, &base).await.0, 202);
    // GitLab's retry and the Resend button reuse the key; the event UUID may differ.
    let resend = hook.clone().header("X-Gitlab-Event-UUID", "another-event-uuid");
    let (status, body) = resend.send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (200, Some("duplicate")), "{body}");
    assert_eq!(server.store.delivery_count().await.unwrap(), 1);
    let store = server.store.clone();
    eventually("the one job has run", || async {
        let c = store.job_counts().await.unwrap();
        c.queued == 0 && c.running == 0
    })
    .await;
    assert_eq!(ordering_keys(&server).await, ["gitlab:2:pr:2"]);
    server.shutdown().await.unwrap();
}

on_both_backends!(every_fixture_is_stored_with_its_ordering_key, a_resend_with_the_same_idempotency_key_is_stored_once);

#[tokio::test]
async fn an_old_instance_without_idempotency_keys_dedupes_on_uuids_and_body() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = token_server(&db).await;
    let legacy = |rel: &str| {
        Hook::fixture(rel, "unused")
            .without("Idempotency-Key")
            .header("X-Gitlab-Webhook-UUID", "hook-uuid-1")
            .header("X-Gitlab-Event-UUID", "event-uuid-1")
            .token(TOKEN)
    };
    let first = legacy("merge_request/open.json");
    assert_eq!(first.send(&client, &base).await.0, 202);
    let (status, body) = first.send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (200, Some("duplicate")), "{body}");
    let digest = hex::encode(Sha256::digest(&first.body));
    assert!(stored(&server, &format!("legacy:hook-uuid-1:event-uuid-1:{digest}")).await.is_some());
    // Webhooks triggered by one event share its UUID: a different body is another delivery.
    let (status, body) = legacy("merge_request/close.json").send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (202, Some("accepted")), "{body}");
    // Without any UUID, the body alone.
    let bare = legacy("push/push.json").without("X-Gitlab-Webhook-UUID").without("X-Gitlab-Event-UUID");
    assert_eq!(bare.send(&client, &base).await.0, 202);
    assert_eq!(bare.send(&client, &base).await.0, 200);
    let digest = hex::encode(Sha256::digest(&bare.body));
    assert!(stored(&server, &format!("body:{digest}")).await.is_some());
    assert_eq!(server.store.delivery_count().await.unwrap(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn guessing_or_omitting_the_secret_token_is_refused_and_a_rotated_token_works() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = token_server(&db).await;
    let hook = || Hook::fixture("merge_request/open.json", &format!("k-{}", fastrand::u64(..)));
    for (what, attempt) in [
        ("wrong token", hook().token("gitlab-test-secret-tokeN")),
        ("prefix of the token", hook().token(&TOKEN[..TOKEN.len() - 1])),
        ("token and more", hook().token(&format!("{TOKEN}x"))),
        ("no token", hook()),
        ("empty token", hook().token("")),
    ] {
        let (status, body) = attempt.send(&client, &base).await;
        assert_eq!((status, outcome(&body)), (401, Some("unauthorized")), "{what}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("X-Gitlab-Token"), "{what}: {body}");
    }
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    assert_eq!(hook().token(ROTATED_TOKEN).send(&client, &base).await.0, 202);
    assert_eq!(hook().token(TOKEN).send(&client, &base).await.0, 202);
    assert_eq!(server.store.delivery_count().await.unwrap(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_validly_signed_delivery_is_accepted_under_its_webhook_id() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = signing_server(&db).await;
    let hook = Hook::fixture("merge_request/update.json", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W").signed(
        SIGNING_TOKEN,
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        now_secs(),
    );
    let (status, body) = hook.send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (202, Some("accepted")), "{body}");
    assert!(stored(&server, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W").await.is_some());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn signing_with_a_key_the_lane_does_not_know_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = signing_server(&db).await;
    let hook = Hook::fixture("merge_request/update.json", "msg_1").signed(OTHER_SIGNING_TOKEN, "msg_1", now_secs());
    let (status, body) = hook.send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (401, Some("unauthorized")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("does not match"), "{body}");
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tampering_with_a_signed_body_or_its_id_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = signing_server(&db).await;
    let signed = Hook::fixture("merge_request/update.json", "msg_1").signed(SIGNING_TOKEN, "msg_1", now_secs());
    let mut tampered = signed.clone();
    let at = tampered.body.windows(6).position(|w| w == b"\"test\"").unwrap();
    tampered.body[at + 1] = b'b'; // the user "test" becomes "best"
    let (status, body) = tampered.send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (401, Some("unauthorized")), "{body}");
    // A replay under a fresh id, to slip past deduplication, breaks the signature too.
    let renamed = signed.clone().header("webhook-id", "msg_2").header("Idempotency-Key", "msg_2");
    assert_eq!(renamed.send(&client, &base).await.0, 401);
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    // A fresh Idempotency-Key alone does not make a replay a new delivery.
    assert_eq!(signed.send(&client, &base).await.0, 202);
    let (status, body) = signed.clone().header("Idempotency-Key", "fresh").send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (200, Some("duplicate")), "{body}");
    assert_eq!(server.store.delivery_count().await.unwrap(), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn replaying_a_signed_delivery_after_five_minutes_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = signing_server(&db).await;
    for (what, at) in [("six minutes old", now_secs() - 360), ("six minutes ahead", now_secs() + 360)] {
        let hook = Hook::fixture("merge_request/update.json", "msg_old").signed(SIGNING_TOKEN, "msg_old", at);
        let (status, body) = hook.send(&client, &base).await;
        assert_eq!((status, outcome(&body)), (401, Some("unauthorized")), "{what}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("5 minutes"), "{what}: {body}");
    }
    let recent = Hook::fixture("merge_request/update.json", "msg_ok").signed(SIGNING_TOKEN, "msg_ok", now_secs() - 240);
    assert_eq!(recent.send(&client, &base).await.0, 202, "four minutes is within the tolerance");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signature_header_listing_a_retired_key_first_is_accepted() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = signing_server(&db).await;
    let ts = now_secs();
    let hook = Hook::fixture("note/merge_request.json", "msg_multi");
    let old = hotfix_lane::ingress::gitlab_signature::sign(OTHER_SIGNING_TOKEN, "msg_multi", ts, &hook.body);
    let good = hotfix_lane::ingress::gitlab_signature::sign(SIGNING_TOKEN, "msg_multi", ts, &hook.body);
    let hook = hook
        .header("webhook-id", "msg_multi")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", format!("{old} {good}"));
    let (status, body) = hook.send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (202, Some("accepted")), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_secret_token_alone_is_refused_once_signing_is_required() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = signing_server(&db).await;
    let (status, body) = Hook::fixture("merge_request/open.json", "k1").token(TOKEN).send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (401, Some("unauthorized")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("webhook-signature"), "{body}");
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn valid_events_the_lane_does_not_handle_are_acknowledged_and_not_stored() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = token_server(&db).await;
    let ignored = |hook: Hook| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let (status, body) = hook.token(TOKEN).send(&client, &base).await;
            assert_eq!((status, outcome(&body)), (200, Some("ignored")), "{body}");
        }
    };
    // A system hook carries MR payloads unchanged: still not the lane's.
    ignored(Hook::fixture("merge_request/open.json", "sys").header("X-Gitlab-Event", "System Hook")).await;
    ignored(Hook::new("System Hook", "sys2", br#"{"event_name":"project_create","name":"x"}"#.to_vec())).await;
    // Routed on the body, whatever the header says.
    ignored(Hook::new("Merge Request Hook", "dep", br#"{"object_kind":"deployment","status":"success"}"#.to_vec()))
        .await;
    let mut approved = common::json_fixture("gitlab/merge_request/open.json");
    approved["object_attributes"]["action"] = "approved".into();
    ignored(Hook::new("Merge Request Hook", "appr", serde_json::to_vec(&approved).unwrap())).await;
    let mut on_commit = common::json_fixture("gitlab/note/merge_request.json");
    on_commit["object_attributes"]["noteable_type"] = "Commit".into();
    ignored(Hook::new("Note Hook", "commit-note", serde_json::to_vec(&on_commit).unwrap())).await;
    let mut tag = common::json_fixture("gitlab/push/push.json");
    tag["object_kind"] = "tag_push".into();
    ignored(Hook::new("Tag Push Hook", "tag", serde_json::to_vec(&tag).unwrap())).await;
    // A known kind this version cannot read: refusing it would count towards disabling the hook.
    ignored(Hook::new(
        "Merge Request Hook",
        "odd",
        br#"{"object_kind":"merge_request","object_attributes":{}}"#.to_vec(),
    ))
    .await;
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains(r#"event="deployment""#), "{metrics}");
    assert!(!metrics.contains(r#"event="System Hook""#), "{metrics}");
    // Known kinds keep their name (one merge request hook is ignored after it was read); the
    // rest, whatever their header claims, are `other`.
    assert!(
        metrics.contains(r#"hotfix_lane_deliveries_total{forge="gitlab",event="merge_request",outcome="ignored"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hotfix_lane_deliveries_total{forge="gitlab",event="other",outcome="ignored"} 6"#),
        "{metrics}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bodies_that_are_not_gitlab_events_get_a_reason() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = token_server(&db).await;
    for (body, reason) in [
        (&b"this is not json"[..], "not valid JSON"),
        (&b"[1, 2, 3]"[..], "not a GitLab webhook event"),
        (&br#"{"kind":"merge_request"}"#[..], "not a GitLab webhook event"),
    ] {
        let (status, answer) =
            Hook::new("Merge Request Hook", "bad", body.to_vec()).token(TOKEN).send(&client, &base).await;
        assert_eq!((status, outcome(&answer)), (400, Some("bad_request")), "{answer}");
        assert!(answer["detail"].as_str().unwrap().contains(reason), "{answer}");
    }
    // Unauthenticated, the body is never looked at.
    let (status, _) = Hook::new("Merge Request Hook", "bad", b"not json".to_vec()).send(&client, &base).await;
    assert_eq!(status, 401);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_oversized_body_is_refused_without_reading_it_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = token_server(&db).await;
    let big = Hook::new("Push Hook", "big", vec![b' '; 30 * 1024 * 1024]).token(TOKEN);
    assert_eq!(big.send(&client, &base).await.0, 413, "declared length above the limit");
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /webhooks/gitlab HTTP/1.1\r\nHost: x\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: {TOKEN}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
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
            break; // the server stopped reading
        }
        sent += 1;
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "after {sent} MiB: {answer}");
    // Without the token, a big body is refused before a byte of it is read.
    let unauthenticated = Hook::new("Push Hook", "big2", vec![b' '; 30 * 1024 * 1024]);
    assert_eq!(unauthenticated.send(&client, &base).await.0, 401);
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn gitlab_not_configured_answers_404() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = server_with(&db, None).await;
    let (status, body) = Hook::fixture("merge_request/open.json", "k").token(TOKEN).send(&client, &base).await;
    assert_eq!((status, outcome(&body)), (404, Some("not_configured")), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signing_token_that_does_not_decode_stops_the_server_from_starting() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (tokens, signing) in [(vec![], vec!["whsec_hunter2-is-not-base64!"]), (vec![""], vec![]), (vec![], vec![])] {
        let mut settings = common::settings(&db);
        settings.gitlab = Some(gitlab(&tokens, &signing));
        let err = hotfix_lane::server::start_with_clock(settings, Arc::new(SystemClock)).await.err().expect("refused");
        let text = err.to_string();
        assert!(text.starts_with("invalid GitLab webhook token"), "{text}");
        assert!(!text.contains("hunter2"), "the token is in the error: {text}");
    }
}

/// Collects everything the server logs on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// The subscriber is the process-wide one (a thread's own misses events on other threads, and
// callsites other tests already saw), so the logs of every test here are searched too.
#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test installs a subscriber");
    let db = TestDb::new(Backend::Sqlite).await;
    let (server, client, base) = token_server(&db).await;
    let near_miss = format!("{TOKEN}-guess");
    assert_eq!(Hook::fixture("push/push.json", "a").token(TOKEN).send(&client, &base).await.0, 202);
    assert_eq!(Hook::fixture("push/push.json", "b").token(&near_miss).send(&client, &base).await.0, 401);
    assert_eq!(Hook::fixture("push/push.json", "c").token(ROTATED_TOKEN).send(&client, &base).await.0, 202);
    server.shutdown().await.unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(r#"forge="gitlab""#) || logs.contains("forge=gitlab"), "deliveries are logged: {logs}");
    assert!(logs.contains("delivery refused"), "{logs}");
    for secret in [TOKEN, ROTATED_TOKEN, near_miss.as_str()] {
        assert!(!logs.contains(secret), "{secret} is in the logs: {logs}");
    }
}
