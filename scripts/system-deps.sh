#!/bin/sh
# Makes sure the Debian programs upaas runs are installed: installs the missing
# ones with apt-get when run as root, otherwise names them in one clear error.
# Called by `npm start`, `npm test` and `npm run bench`.
set -eu

# command:package pairs; `system-deps.sh test` adds what only the tests use.
needs="git:git tar:tar zstd:zstd gzip:gzip unshare:util-linux nsenter:util-linux mount:mount debootstrap:debootstrap
  bash:bash perl:perl-base ip:iproute2 nft:nftables slirp4netns:slirp4netns mkfs.ext4:e2fsprogs"
if [ "${1:-}" = test ]; then needs="$needs python3:python3 ssh:openssh-client ssh-keygen:openssh-client ipcmk:util-linux keyctl:keyutils"; fi
missing=""
for pair in $needs; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    missing="$missing $pkg"
  fi
done
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "upaas: missing Debian packages:$missing (install them as root: apt-get install$missing)" >&2
  exit 1
fi
echo "upaas: installing missing Debian packages:$missing" >&2
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
