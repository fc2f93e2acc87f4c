//! What every request handler shares.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use objects::paths::Paths;

use crate::events::Hub;
use crate::master::Master;
use crate::metrics::Counters;
use crate::tokens::{tokens_file, TokensFile};
use crate::users::{users_file, UsersFile};

/// Largest request body accepted (bigger ones get 413).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Requests served at once by default (Ganeti's `--max-clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 20;

/// How long the master may take to answer one LUXI call.
pub const MASTER_TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon's settings that change how requests are answered.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--require-authentication`: reads need credentials too.
    pub require_auth: bool,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// `--max-clients`: requests served at once (more wait their turn).
    pub max_clients: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            require_auth: false,
            max_body: DEFAULT_MAX_BODY,
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }
}

/// The shared state of the daemon.
pub struct State {
    pub master: Arc<Master>,
    pub users: UsersFile,
    pub tokens: TokensFile,
    pub opts: Options,
    /// What ganeti-rapi counts for `/metrics`.
    pub counters: Counters,
    /// The event stream's watcher and events.
    pub events: Arc<Hub>,
    /// One permit per request being served (`--max-clients`).
    pub slots: tokio::sync::Semaphore,
}

impl State {
    /// The state of the node tree `paths`: its master's socket, its users
    /// and tokens files.
    pub fn new(paths: &Paths, opts: Options) -> Self {
        State::with_files(
            &paths.luxi_socket(),
            &paths.rapi_users(),
            &paths.rapi_tokens(),
            opts,
        )
    }

    /// The state of a master on `socket`, with the users file `users` and
    /// the tokens file `tokens`.
    pub fn with_files(socket: &Path, users: &Path, tokens: &Path, opts: Options) -> Self {
        State {
            master: Arc::new(Master::new(socket, MASTER_TIMEOUT)),
            users: users_file(users),
            tokens: tokens_file(tokens),
            counters: Counters::default(),
            events: Arc::new(Hub::new()),
            slots: tokio::sync::Semaphore::new(opts.max_clients.max(1)),
            opts,
        }
    }
}
