//! `ganeti-rapi`: Ganeti 3.0's REST API, version 2, over LUXI.
//!
//! Every resource of Ganeti's `lib/rapi/connector.py` ([`routes::ROUTES`])
//! with the same bodies, query arguments, status codes and JSON shapes;
//! reads go to the master as queries, writes become opcodes submitted as
//! jobs, whose ids are the answers. The master is reached over its LUXI
//! socket only ([`master`]); nothing here knows how an opcode runs.
//!
//! - [`routes`]: the resource table, the router and the steps of every
//!   request (method, names, credentials, body);
//! - [`resources`]: one module per family of resources;
//! - [`opcode`]: building an opcode from a request, as Ganeti's RAPI does;
//! - [`auth`], [`users`], [`tokens`]: Ganeti's users file and access
//!   rules, and API tokens (`Bearer`, scoped, stored hashed);
//! - [`server`]: HTTPS with `rapi.pem`, a bound on simultaneous clients;
//! - [`error`]: Ganeti's error bodies;
//! - [`events`]: `/2/events`, job and object changes as Server-Sent
//!   Events, resumable with `Last-Event-ID`;
//! - [`metrics`]: `/metrics`, the cluster in Prometheus' text format;
//! - [`openapi`]: the OpenAPI 3.1 document of every resource, served at
//!   `/2/openapi.json` and checked against the router by a test.

pub mod auth;
pub mod ctx;
pub mod error;
pub mod events;
pub mod master;
pub mod metrics;
pub mod opcode;
pub mod openapi;
pub mod resources;
pub mod routes;
pub mod server;
pub mod state;
pub mod tokens;
pub mod users;
pub mod watched;

use std::sync::Arc;

use axum::Router;

/// The whole application: every resource.
pub fn app(state: Arc<state::State>) -> Router {
    routes::router(state)
}
