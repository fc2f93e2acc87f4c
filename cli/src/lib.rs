//! The `gnt-*` command-line tools: argument parsing, opcode and query
//! building, and output formatting over the LUXI client. No cluster logic
//! lives here: the master decides, the CLI asks and prints.

pub mod pyfmt;
pub mod qlang;
pub mod table;
pub mod timefmt;
pub mod units;
pub mod ctx;
pub mod error;
pub mod jobs;
pub mod opcodes;
pub mod output;
pub mod query;
pub mod info;
pub mod params;
pub mod commands;
