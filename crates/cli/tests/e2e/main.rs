//! End-to-end tests: the real programs, started as processes on free ports in temporary
//! directories, talking over real TLS and the real local socket.

mod harness;

mod batch;
mod cli;
mod daemons;
mod jobs;
mod keys;
mod limits;
mod pinning;
mod returners;
mod runners;
mod security;
mod store_servers;
mod stores;
mod swarm;
