//! The server's behaviour through its HTTP API, in process: each test starts the demo server
//! (`common::Server`: the demo project on a port-0 loopback listener, the code `avsb serve`
//! runs) or calls the app with `oneshot` (`common::Demo`), and checks one behaviour. A file per
//! area of the API; `support` holds what several areas share.
//!
//! One test binary for every area, so a change to the server is linked once. What only the real
//! binary does (signals, printed lines, its logs, the command line) is tested in
//! `crates/avsb/tests`.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod admin_auth;
mod admin_projects;
mod admin_bodies;
mod admin_concurrency;
mod admin_keys;
mod admin_kill;
mod admin_matrix;
mod admin_promotion;
mod admin_revisions;
mod admin_schema;
mod admin_tests;
mod connections;
mod events;
mod health;
mod hygiene;
mod malformed_requests;
mod ofrep;
mod ops;
mod pipet;
mod results;
mod sdk_datafile;
mod sdk_stream;
mod spec_over_http;
