//! The lane under attack: every test is named by the attacker's move and asserts that the move
//! fails. One module per surface; `SECURITY.md` maps each control to the tests here.

mod common;

#[path = "security/authorization.rs"]
mod authorization;
#[path = "security/forge_identity.rs"]
mod forge_identity;
#[path = "security/http.rs"]
mod http;
#[path = "security/markup.rs"]
mod markup;
