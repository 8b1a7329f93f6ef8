//! HTTP returner throughput: returns delivered per second by `splunk` (batched HEC events) and
//! `mattermost` (one webhook post per return), against a stand-in server on loopback that
//! answers at once (`saltrs_testkit::StandIn`, Splunk and Mattermost cannot run here).
//!
//! `cargo run --release -p salt-returners --example bench_hooks -- [returns] [runs]`
//!
//! `returns` returns of one job (default 1,000; minion returns of `cmd.run`, ~350 bytes)
//! arrive together and are timed until all are delivered (the server answered), three ways:
//! - **spool → store**: one `Spool::push_nowait` per return, then `flush` (what the master or
//!   the minion does: on disk, then delivered);
//! - **store**: `returner_batch` of all of them;
//! - **ceiling**: a raw reqwest client sending the same request bodies, pre-built, on one
//!   kept-alive connection (splunk: the same requests of many events; mattermost: one post per
//!   return, one after the other, as the store does).
//!
//! Each figure is the median of `runs` runs (default 5); each run is a new job, so nothing is
//! skipped as delivered already.

use std::sync::Arc;
use std::time::{Duration, Instant};

use salt_returners::mattermost::{Mattermost, MattermostConfig};
use salt_returners::options::Lookup;
use salt_returners::record::ReturnRecord;
use salt_returners::splunk::encode::{body as hec_body, HecEvent};
use salt_returners::splunk::{Splunk, SplunkConfig};
use salt_returners::spool::{Record, Spool};
use salt_returners::{Load, Sink, Store};
use saltrs_testkit::stand_in::{Response, StandIn};
use serde_json::json;

fn minion_return(jid: &str, n: usize) -> Load {
    let v = json!({"success": true, "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "id": format!("minion{n:04}")});
    v.as_object().unwrap().clone()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>8.0}/s ({:>8.1} ms)", n as f64 / d.as_secs_f64(), d.as_secs_f64() * 1000.0)
}

async fn spooled(store: Arc<dyn Sink>, rets: &[Load]) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Store::Sink(store)).unwrap();
    let started = Instant::now();
    for ret in rets {
        spool.push_nowait(vec![Record::Return { ret: ret.clone() }]);
    }
    assert!(spool.flush(Duration::from_secs(600)).await, "the spool did not drain");
    started.elapsed()
}

async fn raw(client: &reqwest::Client, url: &str, headers: &[(&str, &str)], bodies: &[String]) -> Duration {
    let started = Instant::now();
    for body in bodies {
        let mut req = client.post(url).body(body.clone());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let answer = req.send().await.unwrap();
        assert!(answer.status().is_success());
        answer.bytes().await.unwrap();
    }
    started.elapsed()
}

fn report(name: &str, n: usize, times: [Vec<Duration>; 3]) {
    let [spool, store, ceiling] = times.map(median);
    println!(
        "{name:<11} spool → store {}   store {}   ceiling {}   store/ceiling {:.2}",
        rate(n, spool),
        rate(n, store),
        rate(n, ceiling),
        ceiling.as_secs_f64() / store.as_secs_f64()
    );
}

async fn bench_splunk(n: usize, runs: usize) {
    let hec = StandIn::builder(|_| Response::json(200, r#"{"text":"Success","code":0}"#)).start();
    let opts = json!({"splunk_http_forwarder": {"token": "t0k3n", "indexer": "127.0.0.1", "scheme": "http", "port": hec.addr().port(),
                                                "index": "main", "sourcetype": "salt"}});
    let config = SplunkConfig::from_opts(Some(opts.as_object().unwrap())).unwrap();
    let url = config.url.to_string();
    let client = reqwest::Client::new();
    let mut times: [Vec<Duration>; 3] = Default::default();
    for run in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            let jid = format!("2026112500391{run:03}{mode:04}");
            let rets: Vec<Load> = (0..n).map(|i| minion_return(&jid, i)).collect();
            let store = Arc::new(Splunk::open_with(config.clone()).unwrap());
            t.push(match mode {
                0 => spooled(store, &rets).await,
                1 => {
                    let started = Instant::now();
                    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
                    started.elapsed()
                }
                _ => {
                    // The same requests the store sends: events up to batch_bytes each.
                    let events: Vec<HecEvent> =
                        rets.iter().map(|r| HecEvent::of_return(&ReturnRecord::parse(r).unwrap().unwrap(), 1764000000, &config)).collect();
                    let mut bodies = Vec::new();
                    let mut batch: Vec<&HecEvent> = Vec::new();
                    let mut bytes = 0;
                    for e in &events {
                        if !batch.is_empty() && bytes + e.text.len() + 1 > config.batch_bytes {
                            bodies.push(String::from_utf8(hec_body(batch.drain(..))).unwrap());
                            bytes = 0;
                        }
                        bytes += e.text.len() + 1;
                        batch.push(e);
                    }
                    bodies.push(String::from_utf8(hec_body(batch)).unwrap());
                    raw(&client, &url, &[("Authorization", "Splunk t0k3n"), ("Content-Type", "application/json")], &bodies).await
                }
            });
        }
    }
    report("splunk", n, times);
    println!("            ({} requests to the collector in all)", hec.requests().len());
}

async fn bench_mattermost(n: usize, runs: usize) {
    let server = StandIn::builder(|_| Response::text(200, "ok")).start();
    let opts = json!({"mattermost": {"hook": "h00k", "api_url": server.url(), "channel": "salt"}});
    let config = MattermostConfig::from_lookup(&Lookup::new(opts.as_object().unwrap())).unwrap();
    let url = config.url.expose().to_string();
    let client = reqwest::Client::new();
    let mut times: [Vec<Duration>; 3] = Default::default();
    for run in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            let jid = format!("2026112500392{run:03}{mode:04}");
            let rets: Vec<Load> = (0..n).map(|i| minion_return(&jid, i)).collect();
            let store = Arc::new(Mattermost::open_with(config.clone()).unwrap());
            t.push(match mode {
                0 => spooled(store, &rets).await,
                1 => {
                    let started = Instant::now();
                    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
                    started.elapsed()
                }
                _ => {
                    let bodies: Vec<String> = rets
                        .iter()
                        .map(|r| salt_returners::mattermost::encode::body(&salt_returners::mattermost::encode::return_text(r), &config))
                        .collect();
                    raw(&client, &url, &[("Content-Type", "application/x-www-form-urlencoded")], &bodies).await
                }
            });
        }
    }
    report("mattermost", n, times);
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    println!("{n} returns arriving together, median of {runs} runs");
    bench_splunk(n, runs).await;
    bench_mattermost(n, runs).await;
}
