//! The highstate returner on returns shaped as Salt's `state.apply` gives them: the report in a
//! file (YAML, JSON, HTML rendered in headless Chromium) and by mail to a real server
//! (aiosmtpd, STARTTLS and a login).

#[allow(dead_code)]
mod mail;
// The job-cache half of the suite is not for a store that keeps no jobs.
#[macro_use]
#[allow(dead_code, unused_macros)]
mod suite;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use salt_returners::highstate::Highstate;
use salt_returners::options::Lookup;
use salt_returners::Sink;
use serde_json::{json, Map, Value};

use mail::{Mailbox, Tls};
use suite::sink::{ServerService, SinkBackend};

const PASSWORD: &str = "hs-pass-314";

/// The sink suite's store: every report mailed over STARTTLS with a login. A report is not the
/// return (counts and states, not its value): the suite reads nothing back, and checks what
/// it can without (refusals one by one, the outage through the spool, dead letters with the
/// server's words, the password never shown); the tests below read the reports.
async fn highstate_backend() -> Option<SinkBackend> {
    let tls = Tls::new();
    let server = mail::smtp_server(&tls.server_args(&[("salt", PASSWORD)]))?;
    let o = json!({"highstate": {
        "report_format": "json", "report_delivery": "smtp", "report_everything": true,
        "smtp_server": "127.0.0.1", "smtp_port": server.port(), "smtp_tls": true, "smtp_ca_file": tls.ca_file(),
        "smtp_username": "salt", "smtp_password": PASSWORD, "smtp_sender": "salt@example.com", "smtp_recipients": "ops@example.com"}});
    let store = Arc::new(open(o));
    let read: suite::sink::Reader = Box::new(|_, _| Box::pin(async { Vec::new() }));
    let server = Arc::new(Mutex::new(server));
    Some(
        SinkBackend::new(store, read, (server.clone(), tls))
            .keeping(|_| None)
            .with_service(mail::Relay { server: ServerService(server), reply: "554 5.7.1 report refused by policy (saltrs-test-refusal)" })
            .with_secret(PASSWORD),
    )
}

sink_conformance!(highstate, highstate_backend);

/// A `state.apply` return: one state changed, one unchanged, one failed; durations in ms.
fn state_apply(id: &str, jid: &str, failed: bool) -> Map<String, Value> {
    let mut states = json!({
        "file_|-motd_|-/etc/motd_|-managed": {
            "name": "/etc/motd", "result": true, "comment": "File /etc/motd updated",
            "changes": {"diff": "--- \n+++ \n@@ -1 +1 @@\n-old\n+Welcome to <web1> & co\n", "mode": {"old": "0644", "new": "0600"}},
            "__sls__": "motd", "__run_num__": 0, "__id__": "motd", "start_time": "12:00:01.123456", "duration": 12.345},
        "pkg_|-vim_|-vim_|-installed": {
            "name": "vim", "result": true, "comment": "All specified packages are already installed", "changes": {},
            "__sls__": "editors", "__run_num__": 1, "__id__": "vim", "start_time": "12:00:01.140000", "duration": 830.2},
    });
    if failed {
        states["service_|-nginx_|-nginx_|-running"] = json!({
            "name": "nginx", "result": false, "comment": "The named service nginx is not available", "changes": {},
            "__sls__": "web", "__run_num__": 2, "__id__": "nginx", "start_time": "12:00:02.000000", "duration": 25.1});
    }
    json!({"id": id, "jid": jid, "fun": "state.apply", "fun_args": [], "return": states,
           "retcode": if failed { 2 } else { 0 }, "success": !failed, "out": "highstate"})
    .as_object()
    .unwrap()
    .clone()
}

fn open(o: Value) -> Highstate {
    Highstate::open(&Lookup::new(o.as_object().unwrap())).unwrap()
}

fn file_options(dir: &Path, format: &str, extra: Value) -> Value {
    let mut o = json!({"highstate": {"report_format": format, "report_delivery": "file",
                                     "file_output": dir.join("{id}.rpt").display().to_string()}});
    for (k, v) in extra.as_object().unwrap() {
        o["highstate"][k] = v.clone();
    }
    o
}

#[tokio::test]
async fn a_yaml_report_goes_to_the_minions_file_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(file_options(dir.path(), "yaml", json!({})));
    store.returner(&state_apply("web1", "20261201120000000001", true)).await.unwrap();
    let path = dir.path().join("web1.rpt");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let report: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        report[0]["stats"],
        json!([{"total": 3}, {"failed": 1, "__style__": "failed"}, {"unchanged": 1, "__style__": "unchanged"},
               {"changed": 1, "__style__": "changed"}, {"duration": 12.345 + 830.2 + 25.1}])
    );
    assert_eq!(
        report[1]["job"],
        json!([{"function": "state.apply"}, {"arguments": []}, {"jid": "20261201120000000001"}, {"success": false}, {"retcode": 2}])
    );
    let states = report[2]["states"].as_array().unwrap();
    assert_eq!(states.len(), 3);
    assert_eq!(states[0]["__style__"], "changed");
    assert_eq!(states[0]["motd"][0], json!({"function": "file.managed"}));
    assert_eq!(states[0]["motd"][5]["changes"][1], json!({"mode": [{"new": "0600"}, {"old": "0644"}]}));
    assert_eq!(states[2]["nginx"][2], json!({"result": false}));
    println!("the YAML report:\n{text}");
}

#[tokio::test]
async fn json_reports_only_what_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    // The defaults: changes and failures reported, a quiet run not.
    let store = open(file_options(dir.path(), "json", json!({})));
    let mut quiet = state_apply("quiet", "20261201120000000002", false);
    quiet["return"].as_object_mut().unwrap().retain(|k, _| k.starts_with("pkg_"));
    store.returner(&quiet).await.unwrap();
    assert!(!dir.path().join("quiet.rpt").exists(), "nothing changed or failed: no report");
    store.returner(&state_apply("changed", "20261201120000000002", false)).await.unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("changed.rpt")).unwrap()).unwrap();
    assert_eq!(report[0]["stats"][3], json!({"changed": 1, "__style__": "changed"}));
    // report_everything: the quiet run too; report_changes off: a change alone is not enough.
    open(file_options(dir.path(), "json", json!({"report_everything": true}))).returner(&quiet).await.unwrap();
    assert!(dir.path().join("quiet.rpt").exists());
    let failures_only = open(file_options(dir.path(), "json", json!({"report_changes": false})));
    failures_only.returner(&state_apply("changed-only", "20261201120000000003", false)).await.unwrap();
    assert!(!dir.path().join("changed-only.rpt").exists());
    failures_only.returner(&state_apply("failed", "20261201120000000003", true)).await.unwrap();
    assert!(dir.path().join("failed.rpt").exists());
}

#[tokio::test]
async fn an_unwritable_report_is_retried_not_lost() {
    let store = open(json!({"highstate.file_output": "/nonexistent-dir/{id}.rpt"}));
    let err = store.returner(&state_apply("web1", "20261201120000000004", true)).await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("/nonexistent-dir/web1.rpt"), "{err}");
}

/// Chromium renders `html` headless into a PNG beside it; its path.
fn screenshot(html: &Path) -> Option<PathBuf> {
    let chromium = std::env::var("SALTRS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        saltrs_testkit::skip(format!("no {chromium} to render the HTML report; install chromium with `bash scripts/services.sh tools`"));
        return None;
    }
    let png = html.with_extension("png");
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(png.exists(), "chromium made no screenshot: {status:?}");
    Some(png)
}

#[tokio::test]
async fn the_html_report_renders_in_chromium() {
    let dir = tempfile::Builder::new().prefix("saltrs-highstate-").tempdir().unwrap().keep();
    let store = open(file_options(&dir, "html", json!({})));
    store.returner(&state_apply("web1", "20261201120000000005", true)).await.unwrap();
    let html = dir.join("web1.html");
    std::fs::rename(dir.join("web1.rpt"), &html).unwrap();
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<html>\n<body>\n<table"), "{text}");
    assert!(text.contains("color:red;\">nginx</td>") && text.contains("color:green\">motd</td>"), "{text}");
    assert!(text.contains("Welcome to &lt;web1&gt; &amp; co"), "escaped: {text}");
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<html><body></body></html>\n").unwrap();
    let (Some(report_png), Some(blank_png)) = (screenshot(&html), screenshot(&blank)) else { return };
    let (report_size, blank_size) = (std::fs::metadata(&report_png).unwrap().len(), std::fs::metadata(&blank_png).unwrap().len());
    assert!(std::fs::read(&report_png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    // A blank page compresses to almost nothing; tables of text do not.
    assert!(
        report_size > 3 * blank_size,
        "the report's screenshot ({report_size} bytes) looks blank ({blank_size} bytes for a blank page)"
    );
    println!("the HTML report rendered by Chromium: {} ({report_size} bytes; a blank page: {blank_size})", report_png.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_mailed_over_starttls_with_the_subject_for_its_outcome() {
    let tls = Tls::new();
    let Some(server) = mail::smtp_server(&tls.server_args(&[("salt", "hs-pass-314")])) else { return };
    let o = json!({"prod.highstate": {
        "report_format": "html", "report_delivery": "smtp", "report_everything": true,
        "smtp_server": "127.0.0.1", "smtp_port": server.port(), "smtp_tls": true, "smtp_ca_file": tls.ca_file(),
        "smtp_username": "salt", "smtp_password": "hs-pass-314", "smtp_sender": "salt@example.com",
        "smtp_recipients": "ops@example.com, dev@example.com",
        "smtp_success_subject": "success minion {id} on host {host}", "smtp_failure_subject": "failure minion {id} ({os})"}});
    let opts = o.as_object().unwrap();
    let ret_config = json!({"ret_config": "prod"}).as_object().unwrap().clone();
    let mut with_grains = opts.clone();
    with_grains.insert("grains".into(), json!({"os": "Debian"}));
    let store = Highstate::open(&Lookup::new(&with_grains).with_ret(&ret_config)).unwrap();
    store.check().await.unwrap();
    store.returner(&state_apply("web1", "20261201120000000006", true)).await.unwrap();
    store.returner(&state_apply("web2", "20261201120000000006", false)).await.unwrap();
    // Again: not mailed twice.
    store.returner(&state_apply("web1", "20261201120000000006", true)).await.unwrap();
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].meta["tls"], true);
    assert_eq!(got[0].meta["login"]["user"], "salt");
    assert_eq!(got[0].meta["rcpt_tos"], json!(["ops@example.com", "dev@example.com"]));
    assert_eq!(got[0].header("Subject"), "failure minion web1 (Debian)");
    assert_eq!(got[0].header("To"), "ops@example.com, dev@example.com");
    assert_eq!(got[0].header("Content-Type"), "text/html; charset=\"us-ascii\"");
    assert!(got[0].body.contains("color:red;\">nginx</td>"), "{}", got[0].body);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim().split('.').next().unwrap();
    assert_eq!(got[1].header("Subject"), format!("success minion web2 on host {host}"));
}
