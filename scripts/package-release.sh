#!/usr/bin/env bash
# Builds hotfix-lane for one target and packages it as a release asset:
#
#   target/dist/hotfix-lane-<target>.tar.gz          the binary `hotfix-lane`, README.md and the
#                                                    licence texts (LICENSE-MIT, LICENSE-APACHE)
#   target/dist/hotfix-lane-<target>.tar.gz.sha256   its line for the release's SHA256SUMS
#
# Usage: scripts/package-release.sh <target-triple>
#   e.g. scripts/package-release.sh x86_64-unknown-linux-gnu
#
# Environment:
#   HOTFIX_LANE_CARGO      the cargo to build with (default `cargo`; `cross` cross-compiles)
#   HOTFIX_LANE_DIST_DIR   where the asset goes (default target/dist)
#   SOURCE_DATE_EPOCH      timestamp of the archive's entries (default: the last commit's)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <target-triple>   (release targets: x86_64-unknown-linux-gnu," \
        "aarch64-unknown-linux-gnu, aarch64-apple-darwin)" >&2
    exit 2
fi
target=$1
[[ $target =~ ^[a-z0-9_]+(-[a-z0-9_]+){2,3}$ ]] || {
    echo "not a target triple: '$target'" >&2
    exit 2
}
cargo=${HOTFIX_LANE_CARGO:-cargo}
dist=${HOTFIX_LANE_DIST_DIR:-target/dist}
name=hotfix-lane-$target
archive=$name.tar.gz

"$cargo" build --release --locked --target "$target"
binary=target/$target/release/hotfix-lane
[[ -f $binary ]] || {
    echo "the build left no $binary" >&2
    exit 1
}

# Run the binary when this machine can: a package whose binary does not start is not shipped.
host=$(rustc -vV | sed -n 's/^host: //p')
if [[ $host == "$target" ]]; then
    "$binary" --version
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/hotfix-lane"
# The binary is distributed under MIT OR Apache-2.0: both texts travel with it.
docs=(README.md LICENSE-MIT LICENSE-APACHE)
cp "${docs[@]}" "$stage/"
chmod 0755 "$stage/hotfix-lane"
(cd "$stage" && chmod 0644 "${docs[@]}")

# Same inputs, same archive: fixed order, owners and times, no name or time in the gzip header.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
mkdir -p "$dist"
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=ustar \
        -cf - -C "$stage" hotfix-lane "${docs[@]}" | gzip -n -9 >"$dist/$archive"
else
    # bsdtar (macOS)
    touch -t "$(date -r "$epoch" +%Y%m%d%H%M.%S)" "$stage/hotfix-lane" "${docs[@]/#/$stage/}"
    tar --uid 0 --gid 0 --uname '' --gname '' --format ustar \
        -cf - -C "$stage" hotfix-lane "${docs[@]}" | gzip -n -9 >"$dist/$archive"
fi

if command -v sha256sum >/dev/null 2>&1; then
    sum=$(sha256sum "$dist/$archive" | awk '{print $1}')
else
    sum=$(shasum -a 256 "$dist/$archive" | awk '{print $1}')
fi
printf '%s  %s\n' "$sum" "$archive" >"$dist/$archive.sha256"
echo "$dist/$archive  sha256 $sum"
