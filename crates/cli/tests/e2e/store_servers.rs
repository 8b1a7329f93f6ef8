//! The store cases (`stores.rs`) against the servers `saltrs_testkit::Server` starts: MongoDB
//! (SecantusDB), etcd, CouchDB (pouchdb-server), Elasticsearch (osmem-server), Redis and
//! memcached, each private, on a free port, in a temporary dir.
//!
//! An outage stops the real server and starts it again on the same port where the server keeps
//! its data across a restart; where it does not (osmem-server and memcached hold everything in
//! memory), a proxy in front of it refuses connections instead, so what was stored before the
//! outage is still there to count.

use saltrs_testkit::Server;

use crate::harness::Outage;
use crate::stores::{outage_during_a_burst, unreachable_at_start, walkthrough, StoreServer};

/// A testkit server as one returner's store.
struct Testkit {
    name: &'static str,
    server: Server,
    /// In front of a server that forgets its data when stopped.
    proxy: Option<Outage>,
    /// The returner's options, given the port the daemons connect to.
    options: fn(u16) -> String,
}

impl Testkit {
    fn new(name: &'static str, server: Option<Server>, options: fn(u16) -> String) -> Option<Testkit> {
        let server = server?;
        let proxy = (!server.kind().keeps_data()).then(|| Outage::new(("127.0.0.1".to_string(), server.port())));
        Some(Testkit { name, server, proxy, options })
    }
}

impl StoreServer for Testkit {
    fn name(&self) -> &'static str {
        self.name
    }
    fn config(&self) -> String {
        (self.options)(self.proxy.as_ref().map_or(self.server.port(), |p| p.port))
    }
    fn stop(&mut self) {
        match &self.proxy {
            Some(proxy) => proxy.down(),
            None => self.server.stop(),
        }
    }
    fn start(&mut self) {
        match &self.proxy {
            Some(proxy) => proxy.restore(),
            None => self.server.start().expect("the server starts again"),
        }
    }
}

fn mongo() -> Option<Testkit> {
    Testkit::new("mongo", Server::mongo(), |port| format!("mongo.host: 127.0.0.1\nmongo.port: {port}\nmongo.db: salt_e2e\n"))
}

fn etcd() -> Option<Testkit> {
    Testkit::new("etcd", Server::etcd(), |port| format!("etcd.host: 127.0.0.1\netcd.port: {port}\n"))
}

fn couchdb() -> Option<Testkit> {
    Testkit::new("couchdb", Server::couchdb(), |port| format!("couchdb.url: http://127.0.0.1:{port}/\ncouchdb.db: salt_e2e\n"))
}

fn elasticsearch() -> Option<Testkit> {
    Testkit::new("elasticsearch", Server::elasticsearch(), |port| format!("elasticsearch.host: 127.0.0.1:{port}\n"))
}

fn redis() -> Option<Testkit> {
    Testkit::new("redis", Server::redis(), |port| format!("redis.host: 127.0.0.1\nredis.port: {port}\n"))
}

fn memcache() -> Option<Testkit> {
    Testkit::new("memcache", Server::memcached(), |port| format!("memcache.host: 127.0.0.1\nmemcache.port: {port}\n"))
}

/// One test per (store, case): each starts its own server.
macro_rules! store_cases {
    ($($store:ident),* $(,)?) => {
        $(
            mod $store {
                #[test]
                fn walkthrough() {
                    if let Some(mut s) = super::$store() {
                        super::walkthrough(&mut s);
                    }
                }

                #[test]
                fn outage_during_a_burst() {
                    if let Some(mut s) = super::$store() {
                        super::outage_during_a_burst(&mut s);
                    }
                }

                #[test]
                fn unreachable_at_start() {
                    if let Some(mut s) = super::$store() {
                        super::unreachable_at_start(&mut s);
                    }
                }
            }
        )*
    };
}

store_cases!(mongo, etcd, couchdb, elasticsearch, redis, memcache);
