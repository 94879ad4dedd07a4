#!/usr/bin/env bash
# Install GeoEdge as a systemd service on a device (run as root from the repository):
#
#   sudo systemd/install.sh firmware_config/beach_station.toml
#   sudo systemd/install.sh --hub firmware_config/hub.toml     (a control room's hub)
#
# --hub: geoedge[hub] into the same venv, the hub config as /etc/geoedge/hub.toml (with the
# password files and certificates it names), the store under /var/lib/geoedge-hub, and
# geoedge-hub.service (systemd/geoedge-hub.service) instead of the station's steps below.
#
# Creates the system user `geoedge`, installs the package into /opt/geoedge/venv,
# copies the station config and the files it names (calibration, transects,
# password file) to /etc/geoedge (the config is installed as station.toml; every file
# there root:geoedge 0640, directories 0750), makes the state directories under
# /var/lib/geoedge, checks the config as the service user, and enables + (re)starts
# geoedge.service (systemd/geoedge.service). Safe to run again to upgrade.
#
# Two profiles:
# - a Jetson (/etc/nv_tegra_release): the venv sees the system's packages
#   (--system-site-packages) so JetPack's OpenCV (GStreamer, NVDEC) and TensorRT bindings
#   are used; ONNX Runtime with CUDA/TensorRT comes from the wheel or index the operator
#   names in GEOEDGE_ORT_GPU (a .whl path/URL, or "--index-url URL onnxruntime-gpu"), and
#   PyPI's CPU onnxruntime and OpenCV are never installed beside them;
# - anything else: geoedge[cpu] (PyPI onnxruntime and opencv-python-headless).
set -euo pipefail
# The venv must be readable by the service user whatever root's umask is; /etc/geoedge
# gets its own modes below (and is 0750 before anything is copied into it).
umask 022

mode=station
if [ "${1:-}" = "--hub" ]; then mode=hub; shift; fi
config="${1:?usage: install.sh [--hub] CONFIG.toml}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix=/opt/geoedge
etc=/etc/geoedge
state=/var/lib/geoedge
unit=geoedge.service

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
[ -f "$config" ] || { echo "install.sh: no such config: $config" >&2; exit 1; }
config_dir="$(cd "$(dirname "$config")" && pwd)"

# The service user; cameras (/dev/video*) and Jetson GPU nodes belong to group video
# (the unit's SupplementaryGroups=video fails to start if the group is missing).
getent group video >/dev/null || groupadd --system video
getent group geoedge >/dev/null || groupadd --system geoedge
id -u geoedge >/dev/null 2>&1 || \
    useradd --system --gid geoedge --home-dir "$state" --no-create-home \
        --shell /usr/sbin/nologin geoedge

if [ "$mode" = station ] && [ -f /etc/nv_tegra_release ]; then
    [ -n "${GEOEDGE_ORT_GPU:-}" ] || {
        echo "install.sh: a Jetson: set GEOEDGE_ORT_GPU to the onnxruntime-gpu wheel for this" \
            "JetPack (path or URL), or to '--index-url URL onnxruntime-gpu'" >&2
        exit 1
    }
    python3 -m venv --system-site-packages "$prefix/venv"
    "$prefix/venv/bin/pip" install --quiet --upgrade pip
    "$prefix/venv/bin/pip" uninstall --quiet --yes onnxruntime opencv-python-headless 2>/dev/null || true
    # shellcheck disable=SC2086  # GEOEDGE_ORT_GPU may carry pip options on purpose
    "$prefix/venv/bin/pip" install --quiet --upgrade $GEOEDGE_ORT_GPU
    "$prefix/venv/bin/pip" install --quiet --upgrade "$repo"
else
    python3 -m venv "$prefix/venv"
    "$prefix/venv/bin/pip" install --quiet --upgrade pip
    extras=cpu
    [ "$mode" = hub ] && extras=hub
    "$prefix/venv/bin/pip" install --quiet --upgrade "$repo[$extras]"
fi
"$prefix/venv/bin/geoedge" doctor || true
install -m 0644 "$repo/README.md" "$prefix/README.md"

if [ "$mode" = hub ]; then
    hub_state=/var/lib/geoedge-hub
    hub_unit=geoedge-hub.service
    install -d -m 0750 -o geoedge -g geoedge "$hub_state"
    install -d -m 0750 -o root -g geoedge "$etc"
    # The files the hub config names, at their paths relative to it; an SQLite store must lie
    # under /var/lib/geoedge-hub, the only place the service may write.
    hub_list='
import sys
from pathlib import Path
from edge.errors import GeoEdgeError
from edge.hub.config import load_hub_config
try:
    config = load_hub_config(sys.argv[1])
except GeoEdgeError as exc:
    sys.exit(f"install.sh: {exc}")
if not config.hub.is_postgresql and not Path(config.hub.store).is_relative_to(sys.argv[2]):
    sys.exit(f"install.sh: hub.store: the service writes only under {sys.argv[2]}: use "
             f"store = \"sqlite://{sys.argv[2]}/hub.sqlite\" or a postgresql:// URL")
if not config.hub.images_dir.is_relative_to(sys.argv[2]):
    sys.exit(f"install.sh: hub.images_dir: the service writes only under {sys.argv[2]}: use "
             f"images_dir = \"{sys.argv[2]}/images\"")
folder = Path(sys.argv[1]).resolve().parent
for path in config.referenced_files()[1:]:
    if path.is_relative_to(folder):
        print(path.relative_to(folder))
'
    hub_files="$(cd / && "$prefix/venv/bin/python" -I -c "$hub_list" "$config" "$hub_state")"
    [ -z "$hub_files" ] || printf '%s\n' "$hub_files" | while IFS= read -r rel; do
        install -D -m 0640 "$config_dir/$rel" "$etc/$rel"
    done
    [ "$config_dir/$(basename "$config")" -ef "$etc/hub.toml" ] ||
        install -m 0640 -o root -g geoedge "$config" "$etc/hub.toml"
    chown -R root:geoedge "$etc"
    find "$etc" -type d -exec chmod 0750 {} +
    find "$etc" -type f -exec chmod 0640 {} +
    # The config and the store checked as the service user before anything is enabled.
    hub_check='
import sys
from edge.errors import GeoEdgeError
from edge.hub.config import load_hub_config
try:
    load_hub_config(sys.argv[1]).store_url()
except GeoEdgeError as exc:
    sys.exit(f"install.sh: {exc}")
'
    (cd / && runuser -u geoedge -- "$prefix/venv/bin/python" -I -c "$hub_check" "$etc/hub.toml")
    install -m 0644 "$repo/systemd/$hub_unit" "/etc/systemd/system/$hub_unit"
    systemctl daemon-reload
    systemd-analyze verify "/etc/systemd/system/$hub_unit" ||
        echo "install.sh: systemd-analyze verify reported the problems above" >&2
    systemctl enable "$hub_unit"
    systemctl reset-failed "$hub_unit" 2>/dev/null || true
    if ! systemctl restart "$hub_unit"; then
        echo "install.sh: $hub_unit did not start; see: journalctl -u geoedge-hub -n 50" >&2
        exit 1
    fi
    echo "$hub_unit installed and running; follow it with: journalctl -u geoedge-hub -f"
    exit 0
fi

# State: the outbox and stores (state/) and the image products (products/), owned by
# the service user. The unit's StateDirectory= would make the top one; the two below
# are made here so that the links from /etc/geoedge resolve before the first start.
install -d -m 0750 -o geoedge -g geoedge "$state" "$state/state" "$state/products"

# Config: only the files the config names (calibration, transects, ROI, tide table,
# models, password files), at their paths relative to it, as listed by the installed
# package (edge.config.referenced_files): never stray outputs lying beside it (snippets,
# products, a developer's local outbox). Files outside the config's folder must be given
# by absolute paths on the device too. Re-running with /etc/geoedge/station.toml itself
# (a package upgrade) copies nothing.
install -d -m 0750 -o root -g geoedge "$etc"
if [ "$config_dir" != "$etc" ]; then
    list='
import sys
from pathlib import Path
from edge.config import load_config, referenced_files
from edge.errors import GeoEdgeError
try:
    config = load_config(sys.argv[1])
except GeoEdgeError as exc:
    sys.exit(f"install.sh: {exc}")
folder = Path(sys.argv[1]).resolve().parent
for path in referenced_files(config):
    if path.is_relative_to(folder):
        print(path.relative_to(folder))
'
    (cd / && "$prefix/venv/bin/python" -I -c "$list" "$config") | while IFS= read -r rel; do
        install -D -m 0640 "$config_dir/$rel" "$etc/$rel"
    done
fi
[ "$config_dir/$(basename "$config")" -ef "$etc/station.toml" ] ||
    install -m 0640 -o root -g geoedge "$config" "$etc/station.toml"
# root:geoedge; directories 0750, files 0640 (secrets included: the MQTT password file,
# TLS keys). The service reads them, cannot change them; other users see nothing.
chown -R root:geoedge "$etc"
find "$etc" -type d -exec chmod 0750 {} +
find "$etc" -type f -exec chmod 0640 {} +

# Relative state paths in the config (state/outbox.sqlite, products/) resolve next to
# it, but /etc is read-only to the service: they are links into /var/lib/geoedge.
for dir in state products; do
    [ -e "$etc/$dir" ] || ln -s "$state/$dir" "$etc/$dir"
done

# Check the config as the service user (it must be able to read every file the config
# names) before enabling anything. -I and cd /: the installed package, not the checkout.
# A bad config is one line naming the key (edge.errors), not a traceback.
check='
import sys
from edge.config import load_config
from edge.errors import GeoEdgeError
try:
    load_config(sys.argv[1])
except GeoEdgeError as exc:
    sys.exit(f"install.sh: {exc}")
'
(cd / && runuser -u geoedge -- "$prefix/venv/bin/python" -I -c "$check" "$etc/station.toml")

install -m 0644 "$repo/systemd/$unit" "/etc/systemd/system/$unit"
systemctl daemon-reload
systemd-analyze verify "/etc/systemd/system/$unit" ||
    echo "install.sh: systemd-analyze verify reported the problems above" >&2
systemctl enable "$unit"
# An earlier crash loop may have hit the start limit; an install re-arms it.
systemctl reset-failed "$unit" 2>/dev/null || true
echo "starting $unit (waits for READY; a first start that builds a TensorRT engine takes minutes)"
if ! systemctl restart "$unit"; then
    echo "install.sh: $unit did not start; see: journalctl -u geoedge -n 50" >&2
    exit 1
fi
echo "$unit installed and running; follow it with: journalctl -u geoedge -f"
