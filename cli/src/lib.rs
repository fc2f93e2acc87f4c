//! The `gnt-*` command-line tools: argument parsing, opcode and query
//! building, and output formatting over the LUXI client. No cluster logic
//! lives here: the master decides, the CLI asks and prints.

pub mod commands;
pub mod ctx;
pub mod error;
pub mod info;
pub mod jobs;
pub mod opcodes;
pub mod output;
pub mod params;
pub mod pyfmt;
pub mod qlang;
pub mod query;
pub mod table;
pub mod timefmt;
pub mod tz;
pub mod units;
