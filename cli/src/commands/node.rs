//! `gnt-node`.

use clap::Subcommand;

use crate::ctx::Ctx;
use crate::error::CliError;

#[derive(Subcommand, Debug)]
pub enum Cmd {}

/// Entry point.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-node", "", dispatch)
}

fn dispatch(_ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {}
}
