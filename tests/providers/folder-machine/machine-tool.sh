#!/bin/sh
# The folder-machine provider's helper binary (installed by `den provider
# add` from the manifest's `binaries`, called as ${MACHINE_TOOL}).
#   machine-tool.sh containers stop|rm   stop or remove the containers whose
#                                        files live on this machine's disk
set -eu
docker=${DOCKER_PATH:-docker}
case "${1:-}/${2:-}" in
  containers/stop) list="ps -q" act="stop -t 1" ;;
  containers/rm) list="ps -aq" act="rm -f" ;;
  *) echo "usage: $0 containers stop|rm" >&2; exit 2 ;;
esac
$docker $list --filter label=den.workspace | while read -r c; do
  case "$($docker inspect -f '{{index .Config.Labels "devcontainer.local_folder"}}' "$c")" in
    "$MACHINE_FOLDER"/*) $docker $act "$c" >/dev/null ;;
  esac
done
