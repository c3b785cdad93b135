//! The fake GitLab itself, over real HTTP: the shapes, errors and traps the lane's GitLab
//! client is written against.

mod common;

use common::fake_gitlab::FakeGitLab;

#[tokio::test]
async fn smoke() {
    let fake = FakeGitLab::start().await;
    fake.add_project(42, "acme/platform/payments", "main");
}
