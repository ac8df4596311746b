//! Process exit codes, after BSD `sysexits.h`, so that systemd units, scripts and container
//! orchestrators can tell a configuration mistake (fix the file, do not restart in a loop) from an
//! unavailable dependency (retry later) or a bug.

/// Everything went well.
pub const OK: u8 = 0;
/// The command line was wrong.
pub const USAGE: u8 = 64;
/// The input data was wrong (a PIN that could not be read, a malformed file given on the command line).
pub const DATAERR: u8 = 65;
/// A service we depend on (Microsoft Graph, Entra ID, the local API) is unavailable.
pub const UNAVAILABLE: u8 = 69;
/// An internal error: a bug, or a store that cannot be written.
pub const SOFTWARE: u8 = 70;
/// An output file could not be created (`man --out`, the triggers record).
pub const CANTCREAT: u8 = 73;
/// A temporary failure: try again later (the store is in use by another pullprintd).
pub const TEMPFAIL: u8 = 75;
/// The configuration is wrong. systemd units mark this as `RestartPreventExitStatus=78`.
pub const CONFIG: u8 = 78;
