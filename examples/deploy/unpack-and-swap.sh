#!/bin/sh
# A deploy command for upaas (apps.deploy.commands): unpacks the package that
# just became current into a folder on this host and swaps it in atomically.
#
#   $DEPLOY_ROOT/releases/<package id>/root  the unpacked package (a whole system tree)
#   $DEPLOY_ROOT/releases/<package id>/env   the app's config vars (0600, env-file form)
#   $DEPLOY_ROOT/current -> releases/<id>    the one to run: replaced by rename(2), so a
#                                            reader sees the old release or the new one, never half
#
# Settings, from apps.deploy.env:
#   DEPLOY_ROOT     where the app lives (required), e.g. /srv/myapp
#   DEPLOY_KEEP     unpacked releases to keep, the current one included (default 3)
#   DEPLOY_RESTART  a command run after the swap, e.g. "systemctl restart myapp"
#
# upaas gives it UPAAS_APP, UPAAS_PACKAGE_ID, UPAAS_PACKAGE_FILE (a verified
# copy), UPAAS_CONFIG_FILE and the rest; it runs on the host as root, in its own
# mount and PID namespaces. A non-zero exit makes upaas put the package before
# back as the current one (and this script leaves `current` as it was).
#
# A package is a tree the app's writers made (their actions ran as root in
# the build's chroot): this script unpacks it as root on the host, so it keeps
# nothing of it that would give a host user more rights: no setuid or setgid
# bit, no file capability, no device node, and the releases folder is root's
# alone. Run the app from it as its own user (see README.md).
set -eu

root=${DEPLOY_ROOT:?set DEPLOY_ROOT in apps.deploy.env}
keep=${DEPLOY_KEEP:-3}
releases="$root/releases"
target="$releases/$UPAAS_PACKAGE_ID"
mkdir -p -m 0700 "$releases"
chmod 0700 "$releases"

# Unpack once per package (a rollback to a kept one finds it there), into a
# temporary folder first: an interrupted unpack never looks like a release.
if [ ! -d "$target" ]; then
  unpacking=$(mktemp -d "$releases/.unpacking-XXXXXX")
  trap 'rm -rf "$unpacking"' EXIT
  mkdir -m 0755 "$unpacking/root"
  tar --extract --numeric-owner --same-owner --preserve-permissions --xattrs --xattrs-include='*' \
    --xattrs-exclude='security.capability' --file "$UPAAS_PACKAGE_FILE" --directory "$unpacking/root"
  find "$unpacking/root" -xdev \( -type b -o -type c \) -exec rm -f {} +
  find "$unpacking/root" -xdev -type f -perm /6000 -exec chmod ug-s {} +
  chmod 0755 "$unpacking"
  mv -T "$unpacking" "$target"
  trap - EXIT
fi
# The config vars of this release (they may have changed since the package was built).
install -m 0600 "$UPAAS_CONFIG_FILE" "$target/env"

# The swap: a new symlink beside the old one, renamed over it.
swap() {
  next=$(mktemp -u "$root/.current-XXXXXX")
  ln -s "$1" "$next"
  mv -T "$next" "$root/current"
}
before=$(readlink "$root/current" 2>/dev/null || true)
swap "releases/$UPAAS_PACKAGE_ID"
echo "$UPAAS_APP release $UPAAS_RELEASE: $root/current -> releases/$(echo "$UPAAS_PACKAGE_ID" | cut -c1-12)"

# A restart that fails puts the release before back (upaas does the same with its current package).
if [ -n "${DEPLOY_RESTART:-}" ] && ! sh -c "$DEPLOY_RESTART"; then
  echo "the restart failed; going back to ${before:-nothing}" >&2
  if [ -n "$before" ]; then
    swap "$before"
    sh -c "$DEPLOY_RESTART" || true
  else
    rm -f "$root/current"
  fi
  exit 1
fi

# Old releases beyond DEPLOY_KEEP go, oldest first; never the current one.
ls -1t "$releases" | grep -E '^[0-9a-f]{64}$' | tail -n +"$((keep + 1))" | while read -r old; do
  if [ "$old" != "$UPAAS_PACKAGE_ID" ]; then
    rm -rf "${releases:?}/$old"
  fi
done
