//! The smtp returner against a real mail server (aiosmtpd, saltrs-testkit's `Kind::Smtp`):
//! the sink suite over STARTTLS with a login, then what the mail looks like.

// The job-cache half of the suite is not for a store that keeps no jobs.
#[macro_use]
#[allow(dead_code, unused_macros)]
mod suite;

#[allow(dead_code)]
mod mail;

use std::sync::{Arc, Mutex};

use salt_returners::options::Lookup;
use salt_returners::smtp::Smtp;
use salt_returners::{Event, ReturnerError, Sink};
use saltrs_testkit::{Kind, Server};
use serde_json::{json, Map, Value};

use mail::{Mailbox, Tls};
use suite::sink::{ServerService, SinkBackend};

const PASSWORD: &str = "pw-0f-the-smtp-test-9a8b";

fn options(server: &Server, extra: Value) -> Map<String, Value> {
    let mut o = json!({"smtp.from": "salt@example.com", "smtp.to": "ops@example.com", "smtp.host": "127.0.0.1",
                       "smtp.port": server.port()})
    .as_object()
    .unwrap()
    .clone();
    o.extend(extra.as_object().unwrap().clone());
    o
}

fn open(o: &Map<String, Value>) -> Smtp {
    Smtp::open(&Lookup::new(o)).unwrap()
}

/// The sink suite's store: STARTTLS with a test CA and a login, as a real relay asks.
async fn smtp_backend() -> Option<SinkBackend> {
    let tls = Tls::new();
    let server = mail::smtp_server(&tls.server_args(&[("salt", PASSWORD)]))?;
    let o = options(&server, json!({"smtp.tls": true, "smtp.ca_file": tls.ca_file(), "smtp.username": "salt", "smtp.password": PASSWORD}));
    let store = Arc::new(open(&o));
    let mailbox = Mailbox::new(server.maildir());
    let reader = mailbox.clone();
    let read: suite::sink::Reader = Box::new(move |jid, id| {
        let reader = reader.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || reader.returns(&jid, &id)).await.unwrap() })
    });
    let server = Arc::new(Mutex::new(server));
    Some(
        SinkBackend::new(store, read, (server.clone(), tls))
            .cutting_above(salt_returners::smtp::MAX_BODY_BYTES)
            .with_service(mail::Relay { server: ServerService(server), reply: "554 5.7.1 message refused by policy (saltrs-test-refusal)" })
            .with_secret(PASSWORD),
    )
}

sink_conformance!(smtp, smtp_backend);

fn ret(jid: &str, id: &str, value: Value) -> Map<String, Value> {
    json!({"id": id, "jid": jid, "fun": "cmd.run", "fun_args": ["echo hi"], "return": value, "retcode": 0, "success": true})
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_is_salts_headers_and_lines() {
    let Some(server) = Server::with_args(Kind::Smtp, &[]) else { return };
    let store = open(&options(&server, json!({"smtp.to": "ops@example.com, dev@example.com", "smtp.fields": "id,fun,nothere"})));
    store.check().await.unwrap();
    store.returner(&ret("20261201120000000001", "web1", json!({"pid": 42, "ok": true, "out": null}))).await.unwrap();
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.meta["mail_from"], "salt@example.com");
    assert_eq!(m.meta["rcpt_tos"], json!(["ops@example.com", "dev@example.com"]));
    assert_eq!(m.meta["tls"], false);
    let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["From", "To", "Date", "Subject"], "Salt's four headers, nothing else");
    assert_eq!(m.header("From"), "salt@example.com");
    assert_eq!(m.header("To"), "ops@example.com, dev@example.com");
    assert_eq!(m.header("Subject"), "Email from Salt web1 cmd.run");
    assert!(chrono::DateTime::parse_from_rfc2822(m.header("Date")).is_ok(), "{}", m.header("Date"));
    assert_eq!(
        m.body,
        "id: web1\nfunction: cmd.run\nfunction args: ['echo hi']\njid: 20261201120000000001\nreturn: {'pid': 42, 'ok': True, 'out': None}\n"
    );
    // The raw data: CRLF lines, the body as it is (no MIME for ASCII text).
    assert!(m.raw.starts_with("From: salt@example.com\r\nTo: "), "{}", m.raw);
    assert!(m.raw.ends_with("\r\nreturn: {'pid': 42, 'ok': True, 'out': None}\r\n"), "{}", m.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_and_a_subject_template_are_rendered() {
    let Some(server) = Server::with_args(Kind::Smtp, &[]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("mail.j2");
    std::fs::write(
        &template,
        "Minion {{ id }} ran {{ fun }}{% if success %} fine{% endif %}.\n\
         {% for name, state in return|items %}- {{ name }}: {{ state.result }} ({{ state.comment }})\n{% endfor %}\
         .leading dot\nRaw: {{ return|tojson }}\n",
    )
    .unwrap();
    let store = open(&options(
        &server,
        json!({"smtp.template": template.display().to_string(), "smtp.subject": "[{{ id }}] {{ fun }}", "smtp.fields": "jid"}),
    ));
    let value = json!({"pkg_|-vim_|-vim_|-installed": {"result": true, "comment": "installed"}, "svc": {"result": false, "comment": "no"}});
    store.returner(&ret("20261201120000000002", "db1", value)).await.unwrap();
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got[0].header("Subject"), "[db1] cmd.run 20261201120000000002");
    assert_eq!(
        got[0].body,
        "Minion db1 ran cmd.run fine.\n- pkg_|-vim_|-vim_|-installed: True (installed)\n- svc: False (no)\n.leading dot\n\
         Raw: {\"pkg_|-vim_|-vim_|-installed\":{\"result\":true,\"comment\":\"installed\"},\"svc\":{\"result\":false,\"comment\":\"no\"}}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_the_login_are_used_and_a_wrong_password_is_said() {
    let tls = Tls::new();
    let Some(server) = mail::smtp_server(&tls.server_args(&[("salt", PASSWORD)])) else { return };
    let secure = json!({"smtp.tls": true, "smtp.ca_file": tls.ca_file(), "smtp.username": "salt", "smtp.password": PASSWORD});
    open(&options(&server, secure.clone())).returner(&ret("20261201120000000003", "web1", json!(true))).await.unwrap();
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got[0].meta["tls"], true);
    assert_eq!(got[0].meta["login"], json!({"user": "salt", "mechanism": "PLAIN"}));

    let mut wrong = secure.clone();
    wrong["smtp.password"] = json!("not-the-password-77");
    let err = open(&options(&server, wrong)).check().await.unwrap_err();
    assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("refused the login of salt") && text.contains("535"), "{text}");
    assert!(!text.contains("not-the-password-77"), "{text}");

    // Without TLS the server offers no AUTH: said so.
    let mut clear = secure.clone();
    clear["smtp.tls"] = json!(false);
    let err = open(&options(&server, clear)).check().await.unwrap_err().to_string();
    assert!(err.contains("offers no AUTH") && err.contains("set tls to True"), "{err}");

    // The system's roots do not know the test's CA: the handshake fails, retried later.
    let mut untrusted = secure.clone();
    untrusted.as_object_mut().unwrap().remove("smtp.ca_file");
    let err = open(&options(&server, untrusted)).check().await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Unavailable(m) if m.contains("TLS handshake")), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_recipients_are_classified_by_the_reply() {
    let Some(server) = Server::with_args(Kind::Smtp, &[]) else { return };
    let to = |to: &str| open(&options(&server, json!({"smtp.to": to})));
    let err = to("refuse@example.com").returner(&ret("20261201120000000004", "m1", json!(1))).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("550") && m.contains("refuses all mail")), "{err:?}");
    let err = to("later@example.com").returner(&ret("20261201120000000004", "m2", json!(2))).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Unavailable(m) if m.contains("451") && m.contains("try again later")), "{err:?}");
    // Some recipients refused: the others get it, as smtplib does.
    to("ops@example.com, refuse@example.com").returner(&ret("20261201120000000004", "m3", json!(3))).await.unwrap();
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta["rcpt_tos"], json!(["ops@example.com"]));
    assert_eq!(got[0].header("To"), "ops@example.com, refuse@example.com");
    // A batch: the refused mail is named, the others are sent over the same connection.
    let store = open(&options(&server, json!({})));
    server.smtp_refuse_next("552 5.3.4 message too big for this mailbox (test)").unwrap();
    let rejected =
        store.returner_batch(&[ret("20261201120000000005", "a", json!(1)), ret("20261201120000000005", "b", json!(2))]).await.unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].index, 0);
    assert!(
        rejected[0].reason.contains("return of a for 20261201120000000005") && rejected[0].reason.contains("552 5.3.4"),
        "{rejected:?}"
    );
    assert_eq!(Mailbox::new(server.maildir()).returns("20261201120000000005", "b"), [json!(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_return_mails_each_events_data() {
    let Some(server) = Server::with_args(Kind::Smtp, &[]) else { return };
    let store = open(&options(&server, json!({"smtp.fields": "id"})));
    let events = [
        Event {
            tag: "salt/job/20261201120000000006/ret/web1".into(),
            data: Value::Object(ret("20261201120000000006", "web1", json!("ok"))),
        },
        Event { tag: "salt/auth".into(), data: json!({"act": "accept", "id": "web2", "_stamp": "2026-12-01T12:00:00.000000"}) },
        Event { tag: "salt/empty".into(), data: json!({}) },
        Event { tag: "salt/odd".into(), data: json!("a string") },
    ];
    let rejected = store.event_return(&events).await.unwrap();
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [3], "{rejected:?}");
    assert!(rejected[0].reason.contains("salt/odd") && rejected[0].reason.contains("not a map"));
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got.len(), 2, "no mail for empty data");
    assert_eq!(got[0].header("Subject"), "Email from Salt web1");
    assert!(got[0].body.ends_with("jid: 20261201120000000006\nreturn: ok\n"), "{}", got[0].body);
    assert_eq!(got[1].header("Subject"), "Email from Salt web2");
    assert_eq!(got[1].body, "id: web2\nfunction: \nfunction args: \njid: \nreturn: \n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_goes_whole_in_base64_with_its_headers() {
    let Some(server) = Server::with_args(Kind::Smtp, &[]) else { return };
    let store = open(&options(&server, json!({"smtp.subject": "Rückmeldung ✓", "smtp.fields": "id"})));
    store.returner(&ret("20261201120000000007", "web1", json!({"msg": "emoji 😀 日本語"}))).await.unwrap();
    let got = Mailbox::new(server.maildir()).all();
    assert_eq!(got[0].header("Subject"), "Rückmeldung ✓ web1");
    assert_eq!(got[0].header("Content-Type"), "text/plain; charset=\"utf-8\"");
    assert_eq!(got[0].header("Content-Transfer-Encoding"), "base64");
    assert!(got[0].body.ends_with("return: {'msg': 'emoji 😀 日本語'}\n"), "{}", got[0].body);
}
