#!/usr/bin/env bash
# Builds the Debian package: target/debian/pullprintd_VERSION-1_ARCH.deb.
# Needs cargo-deb (`cargo install cargo-deb`). The man pages and completions are generated from the
# command line's own definition by the binary just built.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || { echo "build-deb.sh: cargo-deb is missing: cargo install cargo-deb" >&2; exit 1; }
cargo build --release --locked --bin pullprintd
extra=target/deb-extra
rm -rf "$extra" && mkdir -p "$extra/man" "$extra/completions"
target/release/pullprintd man --out "$extra/man"
gzip -9n "$extra"/man/*.1
target/release/pullprintd completions bash > "$extra/completions/pullprintd.bash"
target/release/pullprintd completions zsh > "$extra/completions/_pullprintd"
target/release/pullprintd completions fish > "$extra/completions/pullprintd.fish"
cargo deb --no-build "$@"
