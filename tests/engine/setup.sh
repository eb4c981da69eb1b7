#!/usr/bin/env bash
# Make sure a real container engine and the local test images are present.
#
# Idempotent and quiet when everything is already there (well under 3 s).
# Installs missing Debian packages, starts dockerd in the background when no
# engine answers, and builds the local images the end-to-end tests use.
# Nothing is ever pulled from a registry: the images are made from Debian
# packages with debootstrap and busybox-static.
set -euo pipefail

STATE_DIR=${DEN_ENGINE_STATE:-/var/tmp/den-engine}
DEBIAN_MIRROR=${DEN_DEBIAN_MIRROR:-}
mkdir -p "$STATE_DIR"

log() { printf 'engine: %s\n' "$*" >&2; }

# --- 1. packages --------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client)
command -v git >/dev/null 2>&1 || need+=(git)
command -v file >/dev/null 2>&1 || need+=(file)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v sftp >/dev/null 2>&1 || need+=(openssh-client)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v python3 >/dev/null 2>&1 || need+=(python3) # tests/mock-kubectl, loopback web servers
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry) # Features from a real registry
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils) # that registry with basic auth
command -v tar >/dev/null 2>&1 || need+=(tar)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose) # compose workspaces (v1.29)
[ -x /usr/bin/chromium ] || need+=(chromium) # den ui's page in a real headless browser
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver) # …driven over WebDriver
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || need+=(fonts-dejavu-core) # readable screenshots
if [ -x /bin/busybox ] && ! /bin/busybox --list 2>/dev/null | grep -qx sh; then need+=(busybox-static); fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$STATE_DIR/apt.log" 2>&1
  apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$STATE_DIR/apt.log" 2>&1 \
    || { tail -n 20 "$STATE_DIR/apt.log" >&2; exit 1; }
fi
# busybox (the dynamic one) and busybox-static conflict; the static binary is
# what the no-libc image needs.
if ! file -L /bin/busybox | grep -q 'statically linked'; then
  log "installing busybox-static"
  apt-get install -y -qq busybox-static >>"$STATE_DIR/apt.log" 2>&1
fi

# The Debian mirror apt already uses on this machine (or DEN_DEBIAN_MIRROR).
debian_mirror() {
  local m=$DEBIAN_MIRROR
  if [ -z "$m" ]; then
    m=$(grep -rhoE '^(deb|URIs:)[^#]*https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n 1 || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# Compose v2 as the docker CLI plugin, from Debian 13's docker-compose
# package (2.26, a static Go binary that runs here). The trixie source list
# is given to these apt calls only: the system's sources, lists and package
# cache are not touched, and nothing is installed through dpkg.
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
if ! docker compose version >/dev/null 2>&1; then
  log "installing compose v2 as the docker CLI plugin (Debian 13's docker-compose)"
  apt_dir="$STATE_DIR/trixie"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" \
    >"$apt_dir/sources.list"
  trixie_apt() {
    apt-get -q -o Dir::Etc::sourcelist="$apt_dir/sources.list" -o Dir::Etc::sourceparts=- \
      -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o APT::Get::List-Cleanup=0 "$@"
  }
  { trixie_apt update && (cd "$apt_dir/deb" && rm -f ./*.deb && trixie_apt download docker-compose); } \
    >"$STATE_DIR/compose-v2.log" 2>&1 || { tail -n 20 "$STATE_DIR/compose-v2.log" >&2; exit 1; }
  rm -rf "$apt_dir/root"
  dpkg -x "$apt_dir"/deb/docker-compose_*.deb "$apt_dir/root"
  found=$(find "$apt_dir/root" -path '*cli-plugins/docker-compose' \( -type f -o -type l \) | head -n 1)
  [ -n "$found" ] || { log "no cli-plugins/docker-compose in Debian 13's docker-compose package"; exit 1; }
  mkdir -p "$(dirname "$PLUGIN")"
  install -m 0755 "$(readlink -f "$found")" "$PLUGIN.tmp" && mv "$PLUGIN.tmp" "$PLUGIN"
  rm -rf "$apt_dir"
fi

# --- 2. the engine -------------------------------------------------------------
# Prefer the client that matches the daemon we start (Debian's), but any
# client on PATH that reaches an engine is fine.
DOCKER=${DOCKER:-docker}
engine_up() { timeout 10 "$DOCKER" info >/dev/null 2>&1; }
if ! engine_up; then
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # containerd is started by dockerd itself when no system one runs.
  nohup dockerd --host=unix:///var/run/docker.sock >"$STATE_DIR/dockerd.log" 2>&1 &
  echo $! >"$STATE_DIR/dockerd.pid"
  for _ in $(seq 1 120); do
    engine_up && break
    if ! kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null; then
      log "dockerd exited:"; tail -n 20 "$STATE_DIR/dockerd.log" >&2; exit 1
    fi
    sleep 0.5
  done
  engine_up || { log "dockerd did not answer within 60 s"; tail -n 20 "$STATE_DIR/dockerd.log" >&2; exit 1; }
fi

# --- 3. local test images --------------------------------------------------------
# Each image carries the version of its recipe; a changed recipe rebuilds it.
DEBIAN_RECIPE=2 # bump when the package list below changes
BUSYBOX_RECIPE=1
have_image() { # name recipe
  [ "$("$DOCKER" image inspect -f '{{index .Config.Labels "den.recipe"}}' "$1" 2>/dev/null)" = "$2" ]
}

if ! have_image den-test/busybox "$BUSYBOX_RECIPE"; then
  log "building den-test/busybox"
  dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root" "$dir/usr/local/bin" "$dir/usr/bin" "$dir/usr/sbin" "$dir/sbin"
  chmod 1777 "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  # one hard link per applet, so `sh`, `cat`, `id` … exist and nothing else does
  for applet in $("$dir/bin/busybox" --list-full); do
    [ -e "$dir/$applet" ] || ln "$dir/bin/busybox" "$dir/$applet" 2>/dev/null || true
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  tar -C "$dir" -c . | "$DOCKER" import -c 'CMD ["/bin/sh"]' -c "LABEL den.recipe=$BUSYBOX_RECIPE" - den-test/busybox >/dev/null
  rm -rf "$dir"
fi

if ! have_image den-test/debian:bookworm "$DEBIAN_RECIPE"; then
  log "building den-test/debian:bookworm (debootstrap, about a minute)"
  dir=$(mktemp -d)
  mirror=$(debian_mirror)
  debootstrap --variant=minbase --include=bash,git,procps,ca-certificates,sudo,openssh-client \
    bookworm "$dir" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$STATE_DIR/debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
  rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
  tar -C "$dir" -c . | "$DOCKER" import -c 'CMD ["/bin/bash"]' -c "LABEL den.recipe=$DEBIAN_RECIPE" - den-test/debian:bookworm >/dev/null
  rm -rf "$dir"
fi

# --- 4. podman -----------------------------------------------------------------------
# Debian's podman 4.3 runs rootful here once its default ulimits fit the
# machine's hard limits. This file is for the tests (they point
# CONTAINERS_CONF at it); den itself sets nothing.
conf="$STATE_DIR/containers.conf"
if [ ! -s "$conf" ]; then
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' >"$conf"
fi
if command -v podman >/dev/null 2>&1; then
  want=$("$DOCKER" image inspect -f '{{.Id}}' den-test/busybox)
  have=$(CONTAINERS_CONF=$conf podman image inspect -f '{{.Id}}' den-test/busybox 2>/dev/null || true)
  if [ "sha256:$have" != "$want" ] && [ "$have" != "$want" ]; then
    log "loading den-test/busybox into podman"
    "$DOCKER" save den-test/busybox | CONTAINERS_CONF=$conf podman load >/dev/null 2>&1 \
      || { log "podman could not load den-test/busybox"; exit 1; }
  fi
fi
