#!/usr/bin/env bash
# Builds Herald's container image (Containerfile) from this repository and Debian's packages
# only, no registry: the portable binary (scripts/build-portable.sh), and from the libc6,
# libgcc-s1 and ca-certificates packages (fetched with `apt-get download`, unpacked with
# `dpkg-deb -x`, nothing installed) the dynamic loader, the libraries herald's ELF header
# names, and the CA bundle. Plus deploy/image/etc: passwd and group (uid 10001 "herald"),
# nsswitch.conf (hosts: files dns) and a localhost-only hosts file.
#
#   scripts/build-image.sh           # -> localhost/herald:<version> and :latest (compose.yaml's
#                                    #    default), podman (or docker)
#   IMAGE=herald:test scripts/build-image.sh   # -> that name only
#
# Prints the image's name and size. tests/tests/black_box/image.rs inspects the image and runs
# herald from its exported root filesystem (TEST_HERALD_IMAGE=<name>).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
work="$root/target/image"

if [ "${SKIP_PORTABLE_BUILD:-}" != 1 ]; then
  scripts/build-portable.sh
fi
binary="$root/target/portable/herald-x86_64-linux"
[ -x "$binary" ] || { echo "build-image: $binary is missing: run scripts/build-portable.sh" >&2; exit 1; }

# "herald 0.1.0 (commit <sha>)"
read -r _ version _ commit < <("$binary" --version)
commit="${commit%)}"
image="${IMAGE:-localhost/herald:$version}"

rm -rf "$work"
mkdir -p "$work/debs" "$work/unpacked" "$work/rootfs"
(cd "$work/debs" && apt-get download -q libc6 libgcc-s1 ca-certificates > /dev/null)
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$work/unpacked"
done

rootfs="$work/rootfs"
install -d -m 0755 "$rootfs/usr/local/bin" "$rootfs/lib/x86_64-linux-gnu" "$rootfs/lib64" \
  "$rootfs/etc/ssl/certs" "$rootfs/usr/share/doc"
install -d -m 1777 "$rootfs/tmp"
install -m 0755 "$binary" "$rootfs/usr/local/bin/herald"

# The loader herald asks for, and every library it (or a library it loads) names.
interpreter="$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
[ "$interpreter" = /lib64/ld-linux-x86-64.so.2 ] || { echo "build-image: unexpected interpreter $interpreter" >&2; exit 1; }
cp -L "$work/unpacked/lib64/ld-linux-x86-64.so.2" "$rootfs/lib64/"
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
queue=($(needed "$binary"))
while [ ${#queue[@]} -gt 0 ]; do
  library="${queue[0]}"
  queue=("${queue[@]:1}")
  [ -e "$rootfs/lib/x86_64-linux-gnu/$library" ] && continue
  source="$(find "$work/unpacked" -name "$library" \( -type f -o -type l \) | head -n 1)"
  [ -n "$source" ] || { echo "build-image: no package here provides $library" >&2; exit 1; }
  cp -L "$source" "$rootfs/lib/x86_64-linux-gnu/$library"
  queue+=($(needed "$rootfs/lib/x86_64-linux-gnu/$library"))
done

# The CA bundle update-ca-certificates would write: every certificate the package ships.
cat "$work"/unpacked/usr/share/ca-certificates/mozilla/*.crt > "$rootfs/etc/ssl/certs/ca-certificates.crt"
# The licences of what is copied from the packages.
# (libgcc-s1's doc directory is a symlink into gcc-*-base, a package not fetched here.)
for package in libc6 ca-certificates; do
  install -D -m 0644 "$work/unpacked/usr/share/doc/$package/copyright" "$rootfs/usr/share/doc/$package/copyright"
done
install -m 0644 deploy/image/etc/passwd deploy/image/etc/group deploy/image/etc/nsswitch.conf \
  deploy/image/etc/hosts "$rootfs/etc/"

if command -v podman > /dev/null 2>&1; then
  engine=podman
elif command -v docker > /dev/null 2>&1; then
  engine=docker
else
  echo "build-image: neither podman nor docker is installed (apt-get install podman)" >&2
  exit 1
fi
"$engine" build --quiet --file "$root/Containerfile" --build-arg "VERSION=$version" \
  --build-arg "COMMIT=$commit" --tag "$image" "$work" > /dev/null
if [ -z "${IMAGE:-}" ]; then
  "$engine" tag "$image" "${image%:*}:latest"
fi
size="$("$engine" image inspect --format '{{.Size}}' "$image")"
echo "build-image: $image ($size bytes; version $version, commit $commit)"
