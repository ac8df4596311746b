//! The `pullprintd` command: parse the command line, start logging, hand over to [`pullprintd::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let telemetry = pullprintd::telemetry::init();
    pullprintd::cli::main(&telemetry)
}
