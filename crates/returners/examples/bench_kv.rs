//! Key-value returner throughput: returns stored per second into `redis` and `memcache`.
//!
//! `cargo run --release -p salt-returners --example bench_kv -- [returns] [runs]`
//!
//! Each store runs on a private server that `saltrs_testkit::Server` starts (redis-server,
//! memcached). `returns` returns of one job (default 1,000; master-side return loads, ~300
//! bytes) arrive together and are timed until all are stored, three ways:
//! - **spool → store**: what `master_job_cache: <store>` does: one `Spool::push_nowait` per
//!   return, then `flush`; from the first push until the spool is empty (on disk, delivered);
//! - **store**: `returner_batch` of all of them (one pipeline for redis; one list read and one
//!   pipelined exchange for memcache);
//! - **ceiling**: a raw pipelined client writing the same keys, values pre-serialised, one
//!   round trip, nothing else (redis: Salt's `HSET`/`EXPIRE`/`SET`/`SADD`; memcache: the two
//!   `set`s per return and one `append` per list);
//! - **Salt**: Salt's returner emulated in Rust on one kept connection: redis, one pipeline
//!   per return plus the `SETEX load:<jid>` the master's `save_load` sends with each return;
//!   memcache, per return two `set`s, then for each of `minions` and `jids` a `get` of the
//!   whole list and an `append` (`add` when missing), one round trip each.
//!
//! Each figure is the median of `runs` runs (default 5); the server is emptied before every
//! run, and the stored returns are counted after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use salt_returners::spool::{Record, Spool};
use salt_returners::{JobCache, Load, Store};
use saltrs_testkit::Server;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A return as the master hands it to the job cache.
fn master_return(jid: &str, n: usize) -> Load {
    let v = json!({"cmd": "_return", "id": format!("minion{n:04}"), "success": true,
        "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "user": "root",
        "_stamp": "2026-11-25T00:39:16.909909+00:00", "ts": 1795567156});
    v.as_object().unwrap().clone()
}

/// One `push_nowait` per return, as the master pushes them, then until all are delivered.
async fn spooled(spool: &Spool, rets: &[Load]) {
    for ret in rets {
        spool.push_nowait(vec![Record::Return { ret: ret.clone() }]);
    }
    assert!(spool.flush(Duration::from_secs(600)).await, "the spool did not drain");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>9.0}/s ({:>7.1} ms)", n as f64 / d.as_secs_f64(), d.as_secs_f64() * 1000.0)
}

async fn redis_conn(server: &Server) -> MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn bench_redis(n: usize, runs: usize) {
    let Some(server) = tokio::task::spawn_blocking(Server::redis).await.unwrap() else { return };
    let opts = json!({"redis.host": "127.0.0.1", "redis.port": server.port()});
    let store: Arc<dyn JobCache> = salt_returners::open_job_cache("redis", opts.as_object().unwrap()).await.unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), Store::JobCache(store.clone())).unwrap();
    let mut c = redis_conn(&server).await;
    let jid = "20261125003916657727";
    let rets: Vec<Load> = (0..n).map(|i| master_return(jid, i)).collect();
    let texts: Vec<String> = rets.iter().map(salt_returners::json::dumps_map).collect();
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
            let started = Instant::now();
            match mode {
                0 => assert_eq!(store.returner_batch(&rets).await.unwrap(), []),
                3 => spooled(&spool, &rets).await,
                1 => {
                    let mut pipe = redis::pipe();
                    for (r, text) in rets.iter().zip(&texts) {
                        let id = r["id"].as_str().unwrap();
                        pipe.hset(format!("ret:{jid}"), id, text).ignore();
                        pipe.expire(format!("ret:{jid}"), 86400).ignore();
                        pipe.set(format!("{id}:cmd.run"), jid).ignore();
                        pipe.sadd("minions", id).ignore();
                    }
                    let _: () = pipe.query_async(&mut c).await.unwrap();
                }
                2 => {
                    for (r, text) in rets.iter().zip(&texts) {
                        let id = r["id"].as_str().unwrap();
                        let mut pipe = redis::pipe();
                        pipe.hset(format!("ret:{jid}"), id, text).ignore();
                        pipe.expire(format!("ret:{jid}"), 86400).ignore();
                        pipe.set(format!("{id}:cmd.run"), jid).ignore();
                        pipe.sadd("minions", id).ignore();
                        let _: () = pipe.query_async(&mut c).await.unwrap();
                        let _: () = redis::cmd("SETEX").arg(format!("load:{jid}")).arg(86400).arg(text).query_async(&mut c).await.unwrap();
                    }
                }
                _ => unreachable!("four ways"),
            }
            t.push(started.elapsed());
            let stored: usize = redis::cmd("HLEN").arg(format!("ret:{jid}")).query_async(&mut c).await.unwrap();
            assert_eq!(stored, n);
        }
    }
    let [store_t, ceiling, salt, spool_t] = times.map(median);
    println!("redis     spool {}   store {}   ceiling {}   Salt {}", rate(n, spool_t), rate(n, store_t), rate(n, ceiling), rate(n, salt));
}

/// A raw memcached connection: requests written, answers read line by line.
struct Mc {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Mc {
    async fn new(server: &Server) -> Mc {
        let (r, w) = TcpStream::connect(server.addr()).await.unwrap().into_split();
        Mc { r: BufReader::new(r), w }
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).await.unwrap();
        l
    }

    fn store(verb: &str, key: &str, value: &str) -> String {
        format!("{verb} {key} 16 0 {}\r\n{value}\r\n", value.len())
    }

    /// Sends `text` (holding `answers` one-line requests) and reads the answers.
    async fn send(&mut self, text: &str, answers: usize) -> Vec<String> {
        self.w.write_all(text.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        for _ in 0..answers {
            out.push(self.line().await);
        }
        out
    }

    async fn get(&mut self, key: &str) -> Option<String> {
        self.w.write_all(format!("get {key}\r\n").as_bytes()).await.unwrap();
        let header = self.line().await;
        let len: usize = header.strip_prefix("VALUE ")?.split_whitespace().nth(2)?.parse().ok()?;
        let mut data = vec![0; len + 2];
        self.r.read_exact(&mut data).await.unwrap();
        assert_eq!(self.line().await, "END\r\n");
        Some(String::from_utf8(data[..len].to_vec()).unwrap())
    }

    /// Salt's `_append_list`: read the list, append (or add) when the item is missing.
    async fn salt_append(&mut self, key: &str, item: &str) {
        let list = self.get(key).await.unwrap_or_default();
        if list.split(',').any(|i| i == item) {
            return;
        }
        if self.send(&Self::store("append", key, &format!("{item},")), 1).await[0] == "NOT_STORED\r\n" {
            self.send(&Self::store("add", key, &format!("{item},")), 1).await;
        }
    }
}

async fn bench_memcache(n: usize, runs: usize) {
    let Some(server) = tokio::task::spawn_blocking(Server::memcached).await.unwrap() else { return };
    let opts = json!({"memcache.host": "127.0.0.1", "memcache.port": server.port()});
    let store: Arc<dyn JobCache> = salt_returners::open_job_cache("memcache", opts.as_object().unwrap()).await.unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), Store::JobCache(store.clone())).unwrap();
    let mut mc = Mc::new(&server).await;
    let jid = "20261125003916657727";
    let rets: Vec<Load> = (0..n).map(|i| master_return(jid, i)).collect();
    let texts: Vec<String> = rets.iter().map(salt_returners::json::dumps_map).collect();
    let ids: Vec<&str> = rets.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            assert_eq!(mc.send("flush_all\r\n", 1).await[0], "OK\r\n");
            let started = Instant::now();
            match mode {
                0 => assert_eq!(store.returner_batch(&rets).await.unwrap(), []),
                3 => spooled(&spool, &rets).await,
                1 => {
                    let mut text = String::new();
                    for (id, value) in ids.iter().zip(&texts) {
                        text += &Mc::store("set", &format!("{jid}:{id}"), value);
                        text += &Mc::store("set", &format!("cmd.run:{id}"), value);
                    }
                    let minions: String = ids.iter().map(|id| format!("{id},")).collect();
                    text += &Mc::store("set", "minions", &minions);
                    text += &Mc::store("set", "jids", &format!("{jid},"));
                    mc.send(&text, 2 * n + 2).await;
                }
                2 => {
                    for (id, value) in ids.iter().zip(&texts) {
                        let text = Mc::store("set", &format!("{jid}:{id}"), value);
                        mc.send(&text, 1).await;
                        mc.send(&Mc::store("set", &format!("cmd.run:{id}"), value), 1).await;
                        mc.salt_append("minions", id).await;
                        mc.salt_append("jids", jid).await;
                    }
                }
                _ => unreachable!("four ways"),
            }
            t.push(started.elapsed());
            let got = store.get_jid(jid).await.unwrap();
            assert_eq!(got.len(), n);
        }
    }
    let [store_t, ceiling, salt, spool_t] = times.map(median);
    println!("memcache  spool {}   store {}   ceiling {}   Salt {}", rate(n, spool_t), rate(n, store_t), rate(n, ceiling), rate(n, salt));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("[returns] [runs]")).collect();
    let (n, runs) = (args.first().copied().unwrap_or(1000), args.get(1).copied().unwrap_or(5));
    println!("{n} returns of one job arriving together, median of {runs} runs");
    bench_redis(n, runs).await;
    bench_memcache(n, runs).await;
}
