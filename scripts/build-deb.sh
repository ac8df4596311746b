#!/usr/bin/env bash
# Builds the Debian package: target/debian/pullprintd_VERSION-1_ARCH.deb.
# Needs cargo-deb (`cargo install cargo-deb`). The man pages and completions are generated from the
# command line's own definition by the binary just built.
#
# PULLPRINTD_DEB_PROFILE=dev packages the debug binary instead of building a release one: the deploy
# test uses it, because the test command has already built that binary and a release build would add
# minutes on a small machine. Packages for installing are always built with the default (release).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || { echo "build-deb.sh: cargo-deb is missing: cargo install cargo-deb" >&2; exit 1; }
profile=${PULLPRINTD_DEB_PROFILE:-release}
case $profile in
    release) dir=release ;;
    dev) dir=debug ;;
    *) echo "build-deb.sh: PULLPRINTD_DEB_PROFILE must be release or dev, not '$profile'" >&2; exit 1 ;;
esac
cargo build --profile "$profile" --locked --bin pullprintd
binary=target/$dir/pullprintd
extra=target/deb-extra
rm -rf "$extra" && mkdir -p "$extra/man" "$extra/completions"
"$binary" man --out "$extra/man"
gzip -9n "$extra"/man/*.1
"$binary" completions bash > "$extra/completions/pullprintd.bash"
"$binary" completions zsh > "$extra/completions/_pullprintd"
"$binary" completions fish > "$extra/completions/pullprintd.fish"
# cargo-deb maps the `target/release/` asset paths to the chosen profile's directory.
cargo deb --no-build --profile "$profile" "$@"
