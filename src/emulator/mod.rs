//! The Universal Print emulator: a faithful stand-in for the Graph print API and the Entra token endpoint.
