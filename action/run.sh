#!/usr/bin/env bash
# Entry point of the composite action (action.yml at the repository root): puts the hotfix-lane
# binary for this runner in place, then runs `hotfix-lane action`.
#
# The prebuilt binary comes from the release named by INPUT_VERSION (default: v + the version in
# the action's own Cargo.toml, so an action commit runs the binary released from it). Before it is
# used, its archive must match the sha256 that the action's own commit pins in action/SHA256SUMS
# (written by the release workflow into the commit each release tag points to): pinning the action
# to a commit pins the bytes it runs. Nothing downloaded beside the binary is trusted, and a
# version that action/SHA256SUMS does not list is never downloaded. The verified binary is kept in
# RUNNER_TOOL_CACHE and re-checked against the pinned sha256 on every use. With
# INPUT_BUILD_FROM_SOURCE=true it is built with `cargo install` instead.
#
# Environment (action.yml maps the step's inputs; nothing is interpolated into shell text):
#   INPUT_TOKEN, INPUT_MODE, INPUT_TARGETS  read by the binary itself
#   INPUT_VERSION                  release tag such as v1.2.3; empty: v<Cargo.toml version>
#   INPUT_BUILD_FROM_SOURCE        true | false (default false)
#   HOTFIX_LANE_ACTION_REPOSITORY  owner/name of the action (github.action_repository);
#                                  empty (a local `uses: ./`): GITHUB_REPOSITORY
#   HOTFIX_LANE_RELEASE_BASE_URL   where the release assets are; default
#                                  $GITHUB_SERVER_URL/<repository>/releases/download/<version>
set -euo pipefail

program=hotfix-lane

# Workflow commands: %, CR and LF are escaped so a message cannot start a command of its own.
escape() {
    local s=$1
    s=${s//'%'/%25}
    s=${s//$'\r'/%0D}
    s=${s//$'\n'/%0A}
    printf '%s' "$s"
}
fail() {
    printf '::error title=hotfix-lane::%s\n' "$(escape "$*")"
    exit 1
}
warn() { printf '::warning title=hotfix-lane::%s\n' "$(escape "$*")"; }
info() { printf '%s\n' "$*"; }

action_path=${GITHUB_ACTION_PATH:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
tmp_root=${RUNNER_TEMP:-${TMPDIR:-/tmp}}

case "${INPUT_BUILD_FROM_SOURCE:-false}" in
    true) from_source=true ;;
    false | "") from_source=false ;;
    *) fail "input build-from-source must be true or false, not '${INPUT_BUILD_FROM_SOURCE}'" ;;
esac

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 -r "$1" | awk '{print $1}'
    else
        fail "cannot verify the download: none of sha256sum, shasum or openssl is installed"
    fi
}

# The `version` of the [package] section of the action's Cargo.toml.
package_version() {
    local manifest="$action_path/Cargo.toml"
    [[ -f $manifest ]] || return 0
    awk '
        /^\[/ { in_package = ($0 == "[package]"); next }
        in_package && /^version[[:space:]]*=/ {
            sub(/^version[[:space:]]*=[[:space:]]*"/, ""); sub(/".*$/, ""); print; exit
        }
    ' "$manifest"
}

install_from_source() {
    command -v cargo >/dev/null 2>&1 ||
        fail "build-from-source: true needs cargo on the runner (install a Rust toolchain in an earlier step)"
    local root="$tmp_root/$program-source"
    printf '::group::%s\n' "Building $program from $action_path"
    cargo install --locked --path "$action_path" --root "$root"
    printf '::endgroup::\n'
    binary="$root/bin/$program"
}

install_release() {
    local target arch version repo base proto asset tool_dir marker expected entries actual
    case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
        Linux/X64) target=x86_64-unknown-linux-gnu ;;
        Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
        macOS/ARM64) target=aarch64-apple-darwin ;;
        *)
            fail "no prebuilt $program for a ${RUNNER_OS:-unknown}/${RUNNER_ARCH:-unknown} runner:" \
                "releases have Linux/X64, Linux/ARM64 and macOS/ARM64; set build-from-source: true to build it with cargo"
            ;;
    esac
    arch=$(printf '%s' "$RUNNER_ARCH" | tr '[:upper:]' '[:lower:]')

    version=${INPUT_VERSION:-}
    if [[ -z $version ]]; then
        version=$(package_version)
        [[ -n $version ]] || fail "input version is empty and $action_path/Cargo.toml names no version"
    fi
    [[ $version =~ ^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
        fail "input version must be a release tag such as v1.2.3, not '$version'"
    version=v${version#v}
    asset="$program-$target.tar.gz"

    # The expected sha256 comes from the action's own commit, before anything is downloaded.
    local pinned="$action_path/action/SHA256SUMS" entry="$version/$asset"
    local unpinned="refusing to download an unverified binary. Use the action at the commit that release tag $version points to (uses: ${HOTFIX_LANE_ACTION_REPOSITORY:-<owner>/<repo>}@<that commit's sha> # $version), or set build-from-source: true"
    [[ -f $pinned ]] || fail "this action commit has no action/SHA256SUMS, so it pins no release checksum: $unpinned"
    entries=$(awk -v name="$entry" '$2 == name || $2 == "*" name { print tolower($1) }' "$pinned")
    [[ -n $entries ]] || fail "this action commit pins no checksum for $entry in action/SHA256SUMS: $unpinned"
    [[ $entries != *$'\n'* ]] || fail "action/SHA256SUMS pins more than one checksum for $entry"
    [[ $entries =~ ^[0-9a-f]{64}$ ]] || fail "action/SHA256SUMS has a malformed checksum for $entry"
    expected=$entries

    if [[ -n ${HOTFIX_LANE_RELEASE_BASE_URL:-} ]]; then
        base=${HOTFIX_LANE_RELEASE_BASE_URL%/}
    else
        repo=${HOTFIX_LANE_ACTION_REPOSITORY:-${GITHUB_REPOSITORY:-}}
        [[ $repo =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] ||
            fail "cannot tell which repository holds the releases (got '$repo'); set HOTFIX_LANE_RELEASE_BASE_URL"
        base="${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download/$version"
    fi
    case $base in
        https://*) proto='=https' ;;
        http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) proto='=http' ;;
        file://*) proto='=file' ;;
        *) fail "release assets must be fetched over https, not from '$base'" ;;
    esac
    command -v curl >/dev/null 2>&1 || fail "curl is needed to download $program"

    tool_dir="${RUNNER_TOOL_CACHE:-$tmp_root}/$program/${version#v}/$arch"
    marker="$tool_dir.complete"
    work=$(mktemp -d "$tmp_root/$program.XXXXXX")
    trap 'rm -rf "$work"' EXIT

    download() {
        curl --fail --silent --show-error --location --proto "$proto" --proto-redir "$proto" \
            --retry 3 --retry-delay 2 --connect-timeout 20 --max-time 300 --output "$2" "$1"
    }

    if [[ -f $marker && -f $tool_dir/$asset && -f $tool_dir/$program ]]; then
        if [[ $(sha256 "$tool_dir/$asset") == "$expected" ]] &&
            tar -xzOf "$tool_dir/$asset" "$program" 2>/dev/null | cmp -s - "$tool_dir/$program"; then
            info "$program $version ($target) from the tool cache, sha256 $expected"
            binary="$tool_dir/$program"
            rm -rf "$work"
            return
        fi
        warn "the cached $program $version does not match the sha256 pinned in action/SHA256SUMS; downloading it again"
    fi

    info "Downloading $base/$asset"
    download "$base/$asset" "$work/$asset" || fail "cannot download $base/$asset: is $version released?"
    actual=$(sha256 "$work/$asset")
    if [[ $actual != "$expected" ]]; then
        fail "checksum mismatch for $asset of $version: the action's action/SHA256SUMS pins $expected," \
            "the download is $actual. Not running it."
    fi
    info "sha256 $actual verified against action/SHA256SUMS"

    mkdir -p "$work/unpacked"
    tar -xzf "$work/$asset" -C "$work/unpacked" "$program" 2>/dev/null || fail "$asset holds no $program executable"
    [[ -f $work/unpacked/$program && ! -L $work/unpacked/$program ]] || fail "$asset: $program is not a regular file"

    # Assemble next to the cache entry, then swap it in, so a half-written entry is never used.
    local staging="$tool_dir.partial.$$"
    rm -rf "$staging" "$marker"
    mkdir -p "$staging"
    cp "$work/$asset" "$staging/$asset"
    cp "$work/unpacked/$program" "$staging/$program"
    chmod 0755 "$staging/$program"
    rm -rf "$tool_dir"
    mv "$staging" "$tool_dir"
    : >"$marker"
    binary="$tool_dir/$program"
    rm -rf "$work"
}

binary=
work=
if [[ $from_source == true ]]; then
    install_from_source
else
    install_release
fi
trap - EXIT

# Later steps of the job can run `hotfix-lane` too.
if [[ -n ${GITHUB_PATH:-} ]]; then
    dirname -- "$binary" >>"$GITHUB_PATH"
fi
exec "$binary" action
