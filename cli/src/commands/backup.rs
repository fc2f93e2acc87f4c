//! `gnt-backup`: instance exports (`export`, `import`, `list`,
//! `list-fields`, `remove`).

use clap::Subcommand;
use serde_json::{json, Value};

use crate::commands::instance::{create_opcode, AddArgs};
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::submit_or_send;
use crate::opcodes::OpCode;
use crate::query::{
    generic_list, generic_list_fields, parse_fields, ListFieldsOpts, ListOpts, ListRequest,
    Overrides,
};
use crate::units::Unit;

/// Default fields of `gnt-backup list`.
pub const LIST_DEF_FIELDS: &[&str] = &["node", "export"];

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Lists instance exports available in the ganeti cluster
    List {
        /// Use only this node (can be used multiple times)
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// Don't display column headers
        #[arg(long)]
        no_headers: bool,
        /// Separator between output fields (default: aligned columns)
        #[arg(long, allow_hyphen_values = true)]
        separator: Option<String>,
        /// Units for sizes: h (human-readable), m, g or t
        #[arg(long, value_enum)]
        units: Option<Unit>,
        /// Comma-separated list of output fields; `+f1,f2` adds to the defaults
        #[arg(short = 'o', long = "output", value_name = "FIELDS")]
        output: Option<String>,
        /// Use verbose descriptions for missing values
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// Lists all available fields for exports
    ListFields {
        #[command(flatten)]
        opts: ListFieldsOpts,
        fields: Vec<String>,
    },
    /// Exports an instance to an image
    Export {
        /// Do not ask for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        /// Target node
        #[arg(short = 'n', long = "node")]
        node: Option<String>,
        /// The compression mode to use during transport (only "none")
        #[arg(long, default_value = "none")]
        transport_compression: String,
        /// Don't shutdown the instance (unsafe)
        #[arg(long)]
        noshutdown: bool,
        /// Maximum time (in seconds) to wait for the instance to shut down
        #[arg(long, default_value_t = 120)]
        shutdown_timeout: u64,
        /// Remove the instance from the cluster
        #[arg(long)]
        remove_instance: bool,
        /// Remove the instance from the cluster configuration even if there
        /// are failures during the removal process
        #[arg(long)]
        ignore_remove_failures: bool,
        /// Allow long shutdowns when backing up instances
        #[arg(long)]
        long_sleep: bool,
        #[command(flatten)]
        job: JobOpts,
        /// The instance to export
        instance: String,
    },
    /// Imports an instance from an exported image
    Import {
        /// Source node
        #[arg(long = "src-node")]
        src_node: Option<String>,
        /// Source directory (an export's name, or its path in the export
        /// directory)
        #[arg(long = "src-dir")]
        src_dir: Option<String>,
        /// Reset instance parameters to the cluster's defaults where they
        /// are equal (not supported by ganeti-rs yet)
        #[arg(long)]
        identify_defaults: bool,
        /// The compression mode to use (only "none")
        #[arg(long, default_value = "none")]
        compress: String,
        #[command(flatten)]
        create: AddArgs,
    },
    /// Remove exports of named instance from the filesystem.
    Remove {
        #[command(flatten)]
        job: JobOpts,
        /// The instance whose exports go
        instance: String,
    },
}

/// Entry point of `gnt-backup`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-backup", "Ganeti instance backups", dispatch)
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::List {
            nodes,
            no_headers,
            separator,
            units,
            output,
            verbose,
        } => {
            let opts = ListOpts {
                output,
                no_headers,
                separator,
                units,
                verbose,
                force_filter: false,
            };
            generic_list(
                ctx,
                ListRequest {
                    resource: "export",
                    fields: parse_fields(opts.output.as_deref(), LIST_DEF_FIELDS),
                    names: &nodes,
                    opts: &opts,
                    overrides: Overrides::new(),
                    namefield: "node",
                    qfilter: None,
                    isnumeric: false,
                },
            )
        }
        Cmd::ListFields { opts, fields } => generic_list_fields(ctx, "export", &fields, &opts),
        Cmd::Export {
            force: _,
            node,
            transport_compression,
            noshutdown,
            shutdown_timeout,
            remove_instance,
            ignore_remove_failures,
            long_sleep,
            job,
            instance,
        } => {
            let Some(node) = node else {
                return Err(CliError::invalid("Target node must be specified"));
            };
            let op = OpCode::new("OP_BACKUP_EXPORT")
                .set("instance_name", instance)
                .set("target_node", node)
                .set("compress", transport_compression)
                .set("shutdown", !noshutdown)
                .set("shutdown_timeout", json!(shutdown_timeout))
                .set("remove_instance", remove_instance)
                .set("ignore_remove_failures", ignore_remove_failures)
                .set("zero_free_space", false)
                .set("zeroing_timeout_fixed", Value::Null)
                .set("zeroing_timeout_per_mib", Value::Null)
                .set("long_sleep", long_sleep);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::Import {
            src_node,
            src_dir,
            identify_defaults,
            compress,
            create,
        } => {
            if create.os.is_some() || create.no_install || create.no_start {
                return Err(CliError::invalid(
                    "The OS, --no-install and --no-start do not apply to an import: the OS \
                     comes from the export and the instance is not started",
                ));
            }
            let op = create_opcode(&create, true)?
                .set("src_node", json!(src_node))
                .set("src_path", json!(src_dir))
                .set("identify_defaults", identify_defaults)
                .set("compress", compress);
            submit_or_send(ctx, op, &create.job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::Remove { job, instance } => {
            let op = OpCode::new("OP_BACKUP_REMOVE").set("instance_name", instance);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
    }
}
