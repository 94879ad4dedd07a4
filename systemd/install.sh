#!/usr/bin/env bash
# Install GeoEdge as a systemd service on a device (run as root from the repository):
#
#   sudo systemd/install.sh firmware_config/beach_station.toml
#
# Creates the system user `geoedge`, installs the package into /opt/geoedge/venv,
# copies the station config AND the files next to it (calibration, transects,
# password file) to /etc/geoedge (the config is installed as station.toml), and
# enables + (re)starts geoedge.service. Safe to run again to upgrade.
set -euo pipefail

config="${1:?usage: install.sh STATION_CONFIG.toml}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix=/opt/geoedge
etc=/etc/geoedge

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
[ -f "$config" ] || { echo "install.sh: no such config: $config" >&2; exit 1; }

id -u geoedge >/dev/null 2>&1 || \
    useradd --system --home-dir /var/lib/geoedge --shell /usr/sbin/nologin geoedge

python3 -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install --quiet --upgrade pip
"$prefix/venv/bin/pip" install --quiet "$repo"
install -m 0644 "$repo/README.md" "$prefix/README.md"

# The config's directory holds what its relative paths point to.
install -d -m 0750 -o root -g geoedge "$etc"
cp -r "$(dirname "$config")/." "$etc/"
install -m 0640 -o root -g geoedge "$config" "$etc/station.toml"
chown -R root:geoedge "$etc"
chmod -R g+rX,o-rwx "$etc"

# Relative paths in the config resolve next to it, but /etc is read-only to the
# service: the default state locations (outbox under state/, products/) are links
# into /var/lib/geoedge. A config may also name absolute paths there.
install -d -m 0750 -o geoedge -g geoedge /var/lib/geoedge /var/lib/geoedge/state \
    /var/lib/geoedge/products
for dir in state products; do
    [ -e "$etc/$dir" ] || ln -s "/var/lib/geoedge/$dir" "$etc/$dir"
done

# Check the config as the service user before enabling anything.
runuser -u geoedge -- "$prefix/venv/bin/python" -c \
    "from edge.config import load_config; load_config('$etc/station.toml')"

install -m 0644 "$repo/systemd/geoedge.service" /etc/systemd/system/geoedge.service
systemctl daemon-reload
systemctl enable geoedge.service
systemctl restart geoedge.service
echo "geoedge.service installed; follow it with: journalctl -u geoedge -f"
