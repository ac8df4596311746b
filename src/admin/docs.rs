//! Documentation generated from the command line's own definition (clap), so it cannot drift from
//! it: `pullprintd man --out DIR` writes `pullprintd.1` and a page per sub-command
//! (`pullprintd-setup.1`, …); `pullprintd completions SHELL` prints a completion script. The `.deb`
//! build runs both (see `scripts/build-deb.sh`).

use std::path::Path;

use crate::exit;

/// Writes the man pages of `command` (the CLI's definition) into `out`; returns the exit code.
pub fn write_man_pages(command: clap::Command, out: &Path) -> u8 {
    if let Err(err) = std::fs::create_dir_all(out) {
        eprintln!("pullprintd man: cannot create {}: {err}", out.display());
        return exit::CANTCREAT;
    }
    match clap_mangen::generate_to(command, out) {
        Ok(()) => exit::OK,
        Err(err) => {
            eprintln!("pullprintd man: cannot write into {}: {err}", out.display());
            exit::CANTCREAT
        }
    }
}

/// Prints the completion script of `command` (the CLI's definition) for `shell` on standard output;
/// returns the exit code.
pub fn print_completions(mut command: clap::Command, shell: clap_complete::Shell) -> u8 {
    clap_complete::generate(shell, &mut command, "pullprintd", &mut std::io::stdout());
    exit::OK
}
