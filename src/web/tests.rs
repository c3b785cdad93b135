use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

#[test]
fn forge_links_follow_the_servers_settings() {
    let public = ForgeLinks::new("https://api.github.com", Some("https://gitlab.example.com/"));
    assert_eq!(public.change("github", "o/r", 7).unwrap(), "https://github.com/o/r/pull/7");
    assert_eq!(
        public.change("gitlab", "group/sub/r", 7).unwrap(),
        "https://gitlab.example.com/group/sub/r/-/merge_requests/7"
    );
    let enterprise = ForgeLinks::new("https://ghe.example.com/api/v3/", None);
    assert_eq!(enterprise.change("github", "o/r", 7).unwrap(), "https://ghe.example.com/o/r/pull/7");
    assert_eq!(enterprise.change("gitlab", "o/r", 7), None, "no GitLab configured");
}

#[test]
fn a_token_anywhere_in_the_query_is_a_token_in_the_url() {
    assert!(token_in_url(Some("token=abc")));
    assert!(token_in_url(Some("x=1&Admin_Token=abc")));
    assert!(token_in_url(Some("password=abc")));
    assert!(!token_in_url(Some("next=%2F")));
    assert!(!token_in_url(None));
}

#[test]
fn only_a_same_origin_post_passes() {
    assert!(same_origin(&headers(&[("host", "lane.example.com")])), "no Origin: a browser that sends none");
    assert!(same_origin(&headers(&[("host", "lane.example.com"), ("origin", "https://lane.example.com")])));
    assert!(same_origin(&headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-origin")])));
    assert!(!same_origin(&headers(&[("host", "lane.example.com"), ("origin", "https://evil.example")])));
    assert!(!same_origin(&headers(&[("host", "lane.example.com"), ("origin", "null")])));
    // What a browser sends for a form under `Referrer-Policy: no-referrer`.
    assert!(same_origin(&headers(&[("host", "h"), ("origin", "null"), ("sec-fetch-site", "same-origin")])));
    assert!(!same_origin(&headers(&[("host", "h"), ("origin", "null"), ("sec-fetch-site", "cross-site")])));
    assert!(!same_origin(&headers(&[("host", "h"), ("origin", "https://evil"), ("sec-fetch-site", "same-origin")])));
    assert!(!same_origin(&headers(&[("host", "lane.example.com"), ("sec-fetch-site", "cross-site")])));
    assert!(!same_origin(&headers(&[("host", "lane.example.com"), ("sec-fetch-site", "same-site")])));
}
