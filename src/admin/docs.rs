//! Documentation generated from the command line's own definition (clap), so it cannot drift from
//! it: `pullprintd man --out DIR` writes `pullprintd.1` and a page per sub-command
//! (`pullprintd-setup.1`, …); `pullprintd completions SHELL` prints a completion script. The `.deb`
//! build runs both (see `scripts/build-deb.sh`).

use std::path::Path;

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::exit;

/// Writes the man pages into `out`; returns the exit code.
pub fn write_man_pages(out: &Path) -> u8 {
    if let Err(err) = std::fs::create_dir_all(out) {
        eprintln!("pullprintd man: cannot create {}: {err}", out.display());
        return exit::CANTCREAT;
    }
    match clap_mangen::generate_to(Cli::command(), out) {
        Ok(()) => exit::OK,
        Err(err) => {
            eprintln!("pullprintd man: cannot write into {}: {err}", out.display());
            exit::CANTCREAT
        }
    }
}

/// Prints the completion script for `shell` on standard output; returns the exit code.
pub fn print_completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "pullprintd", &mut std::io::stdout());
    exit::OK
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn man_pages_are_written_for_the_command_and_its_sub_commands() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_man_pages(dir.path()), exit::OK);
        let main = std::fs::read_to_string(dir.path().join("pullprintd.1")).unwrap();
        assert!(main.contains("pullprintd"), "{main}");
        assert!(dir.path().join("pullprintd-setup.1").exists());
        assert!(dir.path().join("pullprintd-triggers.1").exists());
    }
}
