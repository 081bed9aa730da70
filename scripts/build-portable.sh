#!/usr/bin/env bash
# Builds the release `herald` that runs on any x86_64 Linux with glibc 2.28 or newer (Amazon
# Linux 2023 has 2.34, Debian 10 and RHEL 8 have 2.28): cargo-zigbuild links against glibc
# 2.28's symbol versions with zig's linker, whatever glibc this machine has.
#
#   scripts/build-portable.sh            # -> target/portable/herald-x86_64-linux (+ .sha256)
#
# Installs what it needs on first use: ziglang from PyPI into target/venvs/zig, cargo-zigbuild
# from crates.io into ~/.cargo/bin. The image (Containerfile) and the Terraform artifact
# (herald_artifact_url) both use this binary; tests/tests/black_box/portable.rs checks its
# glibc floor. HERALD_COMMIT overrides the commit `herald --version` prints (default: git HEAD).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

ZIGLANG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1
TARGET=x86_64-unknown-linux-gnu
GLIBC=2.28

venv="$root/target/venvs/zig"
if [ ! -f "$venv/.installed-$ZIGLANG_VERSION" ]; then
  echo "build-portable: installing ziglang $ZIGLANG_VERSION into target/venvs/zig"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
  touch "$venv/.installed-$ZIGLANG_VERSION"
fi
# cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH: the venv's python3 has it.
export PATH="$venv/bin:$PATH"

if ! cargo zigbuild --help > /dev/null 2>&1; then
  echo "build-portable: installing cargo-zigbuild $ZIGBUILD_VERSION"
  cargo install --locked --quiet cargo-zigbuild --version "$ZIGBUILD_VERSION"
fi

cargo zigbuild --release --locked -p herald --target "$TARGET.$GLIBC"

out="$root/target/portable"
mkdir -p "$out"
cp "$root/target/$TARGET/release/herald" "$out/herald-x86_64-linux"
(cd "$out" && sha256sum herald-x86_64-linux > herald-x86_64-linux.sha256)
echo "build-portable: $out/herald-x86_64-linux ($(stat -c %s "$out/herald-x86_64-linux") bytes, glibc >= $GLIBC)"
cat "$out/herald-x86_64-linux.sha256"
