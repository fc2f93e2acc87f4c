//! `gnt-cluster rapi-token`: RAPI's API tokens, kept hashed in the
//! master's `var/lib/ganeti/rapi/tokens` ([`objects::api_tokens`]);
//! `ganeti-rapi` reads the file again when it changes. Runs on the master,
//! without the master daemon.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use clap::Subcommand;
use objects::api_tokens::{self, ApiToken, TokenScope};
use objects::paths::Paths;

use crate::error::{exit, CliError};
use crate::output;

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Makes a token and prints it (only now: the file keeps its hash)
    Add {
        /// The token may only read
        #[arg(long = "read-only", conflicts_with = "opcodes")]
        read_only: bool,
        /// The token may read, and write with these opcodes only (OP_IDs, comma-separated)
        #[arg(long = "opcodes", value_delimiter = ',')]
        opcodes: Vec<String>,
        /// The token's name
        name: String,
    },
    /// Revokes a token
    Remove {
        /// The token's name
        name: String,
    },
    /// Lists the tokens and what they may do
    List,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> CliError {
    CliError::exec(format!("Cannot {what} {}: {e}", path.display()))
}

/// The tokens of the file (none if there is no file).
fn read(path: &Path) -> Result<Vec<ApiToken>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            api_tokens::parse(&text).map_err(|e| CliError::exec(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error("read", path, e)),
    }
}

/// Replaces the file (mode 0600) in one rename.
fn write(path: &Path, tokens: &[ApiToken]) -> Result<(), CliError> {
    let tmp = path.with_extension("new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_error("write", &tmp, e))?;
    f.write_all(api_tokens::format(tokens).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error("replace", path, e))
}

/// Runs `change` on the tokens with the file locked against other
/// `gnt-cluster rapi-token` commands.
fn with_tokens<T>(
    paths: &Paths,
    change: impl FnOnce(&mut Vec<ApiToken>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let path = paths.rapi_tokens();
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !paths.config_db().exists() {
        return Err(CliError::prereq(
            format!(
                "This node holds no cluster configuration ({}): run this on the master",
                paths.config_db().display()
            ),
            luxi::ErrorCode::Environ,
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let lock_path = dir.join("tokens.lock");
    let lock_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| io_error("open", &lock_path, e))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| CliError::exec(format!("Cannot lock {}: {e}", lock_path.display())))?;
    let mut tokens = read(&path)?;
    let before = tokens.clone();
    let out = change(&mut tokens)?;
    if tokens != before {
        write(&path, &tokens)?;
    }
    Ok(out)
}

/// Runs a `rapi-token` subcommand.
pub fn run(cmd: TokenCmd) -> Result<i32, CliError> {
    let paths = Paths::from_env();
    match cmd {
        TokenCmd::Add {
            read_only,
            opcodes,
            name,
        } => {
            if !api_tokens::valid_name(&name) {
                return Err(CliError::invalid(format!(
                    "Invalid token name '{name}': letters, digits, '_', '.' and '-' only"
                )));
            }
            let scope = match (read_only, opcodes.is_empty()) {
                (true, _) => TokenScope::Read,
                (false, false) => {
                    if let Some(bad) = opcodes
                        .iter()
                        .find(|o| luxi::opcodes::opcode_params(o).is_none())
                    {
                        return Err(CliError::invalid(format!("Unknown opcode '{bad}'")));
                    }
                    TokenScope::Write(opcodes)
                }
                (false, true) => {
                    return Err(CliError::invalid(
                        "Give --read-only, or --opcodes with the opcodes the token may submit",
                    ))
                }
            };
            let secret = api_tokens::new_secret();
            with_tokens(&paths, |tokens| {
                if tokens.iter().any(|t| t.name == name) {
                    return Err(CliError::prereq(
                        format!("A token named '{name}' exists already"),
                        luxi::ErrorCode::Exists,
                    ));
                }
                tokens.push(ApiToken {
                    name: name.clone(),
                    hash: api_tokens::hash(&secret),
                    scope,
                });
                Ok(())
            })?;
            output::out(&secret);
            Ok(exit::SUCCESS)
        }
        TokenCmd::Remove { name } => {
            with_tokens(&paths, |tokens| {
                let before = tokens.len();
                tokens.retain(|t| t.name != name);
                if tokens.len() == before {
                    return Err(CliError::prereq(
                        format!("No token named '{name}'"),
                        luxi::ErrorCode::NoEnt,
                    ));
                }
                Ok(())
            })?;
            Ok(exit::SUCCESS)
        }
        TokenCmd::List => {
            let tokens = with_tokens(&paths, |t| Ok(t.clone()))?;
            output::out("Name Scope");
            for t in tokens {
                let scope = match &t.scope {
                    TokenScope::Read => "read".to_string(),
                    TokenScope::Write(ops) => format!("write:{}", ops.join(",")),
                };
                output::out(&format!("{} {scope}", t.name));
            }
            Ok(exit::SUCCESS)
        }
    }
}
