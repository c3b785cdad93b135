//! The Grafana dashboard and the Prometheus alerts in deploy/ against what the server exports: a
//! renamed or misspelled metric would leave a panel empty and an alert silent, and neither
//! Grafana nor Prometheus complains about a metric that does not exist.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use hotfix_lane::metrics::Metrics;
use hotfix_lane::store::JobCounts;
use serde_json::Value;

const PREFIX: &str = "hotfix_lane_";
const DATASOURCE_REF: &str = "${datasource}";

fn asset(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn dashboard() -> Value {
    let text = asset("deploy/grafana/dashboards/hotfix-lane.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("hotfix-lane.json is not JSON: {e}"))
}

/// Every metric family of the registry with a series, so that each exported sample name shows.
fn rendered() -> String {
    let m = Metrics::default();
    m.delivery("github", Some("pull_request"), "accepted", Duration::from_millis(3));
    m.grant("created");
    m.authorization_latency(Duration::from_secs(120));
    m.time_to_merge(Duration::from_secs(900));
    m.backport_lead_time("opened", Duration::from_secs(300));
    m.backports_unmerged(1, 1);
    m.job_attempt("dispatch");
    m.job_failure("dispatch");
    m.job_dead("dispatch");
    m.job_timeout("dispatch");
    m.worker_busy(1);
    m.connection(1);
    m.connection_refused();
    m.hotfix_outcome("github", "merged");
    m.change_merged("github", true);
    m.hotfix_reverted("github");
    m.time_to_patch(Duration::from_secs(600));
    m.time_to_deploy(Duration::from_secs(1800));
    m.postmortem_completed(Duration::from_secs(86_400));
    m.postmortem_reminder("due");
    m.postmortems(1, 1);
    m.lanes_waiting(&[("smoke", 1)], Some(Duration::from_secs(60)));
    m.render(Some(JobCounts { queued: 1, running: 1, done: 1, dead: 1 }), 1024)
}

/// The sample names of the exposition (`x_total`, `x_bucket`, `x_sum`, `x_count`, gauges as
/// they are): the names a query can select. Panics if a family declared by `# TYPE` has no
/// sample, which means a method is missing from `rendered`.
fn exported_names() -> BTreeSet<String> {
    let text = rendered();
    let mut names = BTreeSet::new();
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            families.push(decl.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    for family in &families {
        assert!(
            names
                .iter()
                .any(|n| n == family || n.strip_prefix(family.as_str()).is_some_and(|rest| rest.starts_with('_'))),
            "family {family} has no series: call its method in rendered()\n{text}"
        );
    }
    assert!(names.len() > 20, "too few names rendered:\n{text}");
    names
}

/// Every `hotfix_lane_…` identifier in a PromQL expression.
fn metric_refs(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut refs = Vec::new();
    let mut i = 0;
    while let Some(found) = expr[i..].find(PREFIX) {
        let start = i + found;
        let mut end = start + PREFIX.len();
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase() || bytes[end].is_ascii_digit() || bytes[end] == b'_')
        {
            end += 1;
        }
        if start == 0 || !ident(bytes[start - 1]) {
            refs.push(expr[start..end].to_string());
        }
        i = end;
    }
    refs
}

/// (panel title, expression) for every target of every panel, rows' nested panels included.
fn panel_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.to_string(), expr.to_string()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// (alert name, expression) for every `expr:` of a rules file, folded or literal blocks joined.
/// Text scanning on purpose: promtool checks the YAML itself, and the crate has no YAML parser.
fn alert_exprs(text: &str) -> Vec<(String, String)> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let mut alert = String::from("(no alert)");
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("alert:") {
            alert = name.trim().to_string();
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest.starts_with('>') || rest.starts_with('|') {
                let own = indent(lines[i]);
                let mut block = Vec::new();
                while i + 1 < lines.len() && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > own) {
                    i += 1;
                    block.push(lines[i].trim());
                }
                out.push((alert.clone(), block.join(" ")));
            } else {
                out.push((alert.clone(), rest.to_string()));
            }
        }
        i += 1;
    }
    out
}

/// The unknown metric of each expression, as "where: name".
fn unknown_refs(exprs: &[(String, String)], known: &BTreeSet<String>, kind: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (owner, expr) in exprs {
        let refs = metric_refs(expr);
        if refs.is_empty() {
            errors.push(format!("{kind} {owner:?}: no {PREFIX}* metric in `{expr}`"));
        }
        for name in refs.into_iter().filter(|r| !known.contains(r)) {
            errors.push(format!("{kind} {owner:?}: unknown metric {name} in `{expr}`"));
        }
    }
    errors
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let known = exported_names();
    let dashboard = dashboard();
    let exprs = panel_exprs(&dashboard);
    assert!(exprs.len() >= 20, "only {} panel queries found", exprs.len());
    let mut errors = unknown_refs(&exprs, &known, "panel");
    let variables: Vec<(String, String)> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or_default();
            (v["name"].as_str().unwrap_or_default().to_string(), query.to_string())
        })
        .collect();
    errors.extend(unknown_refs(&variables, &known, "variable"));
    assert!(errors.is_empty(), "deploy/grafana/dashboards/hotfix-lane.json:\n{}", errors.join("\n"));
}

#[test]
fn every_alert_names_an_exported_metric_and_says_what_to_do() {
    let known = exported_names();
    let text = asset("deploy/prometheus/alerts.yml");
    let exprs = alert_exprs(&text);
    let alerts: BTreeSet<&str> = exprs.iter().map(|(a, _)| a.as_str()).collect();
    for wanted in [
        "HotfixPostmortemsOverdue",
        "HotfixBackportsStale",
        "HotfixLaneStuckWaiting",
        "HotfixLaneWebhookFailures",
        "HotfixLaneJobsDead",
        "HotfixLaneDown",
    ] {
        assert!(alerts.contains(wanted), "alerts.yml has no {wanted} with an expr: {alerts:?}");
    }
    // `up` is Prometheus's own: the one expression allowed without a hotfix-lane metric.
    let ours: Vec<_> = exprs.into_iter().filter(|(a, _)| a != "HotfixLaneDown").collect();
    let errors = unknown_refs(&ours, &known, "alert");
    assert!(errors.is_empty(), "deploy/prometheus/alerts.yml:\n{}", errors.join("\n"));

    // Each rule carries a severity and tells the reader what to do.
    for rule in text.split("- alert:").skip(1) {
        let name = rule.split_whitespace().next().unwrap();
        for key in ["severity:", "summary:", "description:"] {
            assert!(rule.contains(key), "alert {name} has no {key}");
        }
    }
}

#[test]
fn dashboard_imports_anywhere() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "hotfix-lane", "a stable uid keeps links and provisioning updates working");
    assert!(dashboard.get("id").is_some_and(Value::is_null), "`id` must be null, or an import overwrites another");
    assert!(dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 39);
    assert_eq!(dashboard["time"]["from"], "now-30d");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name);
    let ds = variable("datasource").expect("no datasource variable");
    assert_eq!((&ds["type"], &ds["query"]), (&Value::from("datasource"), &Value::from("prometheus")));
    for name in ["job", "instance"] {
        let v = variable(name).unwrap_or_else(|| panic!("no {name} variable"));
        assert!(v["definition"].as_str().is_some_and(|d| d.contains("hotfix_lane_build_info")), "{v}");
    }

    // Every data source reference, anywhere in the document, is the variable: a hard-coded uid
    // is some other Grafana's data source and leaves the panel broken after an import.
    let mut errors = Vec::new();
    datasource_refs(&dashboard, "dashboard", &mut errors);
    let mut missing = Vec::new();
    panels_without_datasource(&dashboard["panels"], &mut missing);
    errors.extend(missing.into_iter().map(|t| format!("panel {t:?} has no datasource")));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn datasource_refs(value: &Value, owner: &str, errors: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let owner = map.get("title").and_then(Value::as_str).unwrap_or(owner);
            for (key, v) in map {
                if key == "datasource" {
                    let uid = v.as_str().or(v["uid"].as_str());
                    if uid != Some(DATASOURCE_REF) {
                        errors.push(format!("panel {owner:?} hard-codes a datasource: {v}"));
                    }
                }
                datasource_refs(v, owner, errors);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| datasource_refs(v, owner, errors)),
        _ => {}
    }
}

fn panels_without_datasource(panels: &Value, out: &mut Vec<String>) {
    for panel in panels.as_array().into_iter().flatten() {
        if panel["type"] != "row" && panel.get("datasource").is_none() {
            out.push(panel["title"].as_str().unwrap_or("(untitled)").to_string());
        }
        panels_without_datasource(&panel["panels"], out);
    }
}

#[test]
fn the_scanners_find_what_they_must() {
    assert_eq!(
        metric_refs(
            r#"sum(rate(hotfix_lane_a_total{x="hotfix_lane_not"}[5m])) / my_hotfix_lane_b + hotfix_lane_c_bucket"#
        ),
        ["hotfix_lane_a_total", "hotfix_lane_not", "hotfix_lane_c_bucket"]
    );
    // A collapsed row keeps its panels inside it.
    let nested: Value = serde_json::from_str(
        r#"{"panels": [
            {"type": "row", "title": "R", "collapsed": true, "panels": [
                {"title": "inner", "targets": [{"expr": "hotfix_lane_x"}]}]},
            {"title": "outer", "targets": [{"expr": "hotfix_lane_y"}, {"refId": "B"}]}]}"#,
    )
    .unwrap();
    let exprs = panel_exprs(&nested);
    assert_eq!(exprs, [("inner".into(), "hotfix_lane_x".into()), ("outer".into(), "hotfix_lane_y".into())]);
    let known: BTreeSet<String> = ["hotfix_lane_y".to_string()].into();
    assert_eq!(
        unknown_refs(&exprs, &known, "panel"),
        [r#"panel "inner": unknown metric hotfix_lane_x in `hotfix_lane_x`"#]
    );

    let rules = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: hotfix_lane_a > 0\n        for: 1m\n      - alert: B\n        expr: >-\n          sum(hotfix_lane_b)\n          or hotfix_lane_c\n        labels:\n          severity: x\n";
    assert_eq!(
        alert_exprs(rules),
        [("A".into(), "hotfix_lane_a > 0".into()), ("B".into(), "sum(hotfix_lane_b) or hotfix_lane_c".into())]
    );
}
