# Sourced by the entry scripts: runs the calling script again as root when it
# is not, through sudo, keeping the caller's Rust toolchain (rustup keeps it
# under the user's home, which root's PATH and HOME do not reach).
# Usage: as_root "$0" "$@"
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    return 0
  fi
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$1"): needs root (network namespaces, XDP, apt-get), and sudo is not installed: run it as root" >&2
    exit 1
  fi
  exec sudo env "PATH=$PATH" \
    "CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}" \
    "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}" \
    "$@"
}
