#!/usr/bin/env bash
# Install (or remove) the SMS appliance on Raspberry Pi OS / Debian. Run as root from a
# checkout of the project; running it again upgrades in place and changes nothing else.
#
#   sudo scripts/install.sh                       install or upgrade
#   sudo scripts/install.sh --modemmanager=mask   also keep ModemManager off the modems for good
#   sudo scripts/install.sh --postgresql          also install PostgreSQL support (several appliances
#                                                 sharing one database; psycopg over Debian's libpq5)
#   sudo scripts/install.sh --uninstall           remove program, unit and rules; keep config and data
#   sudo scripts/install.sh --uninstall --purge   also remove config, database and the user
#   sudo PYTHON=/usr/bin/python3.12 scripts/install.sh   use another system Python (default /usr/bin/python3)
#
# What it puts where:
#   /opt/appliance/venv                  Python virtualenv with the appliance installed
#   /usr/local/bin/appliance             symlink to the venv's command, for technicians
#   /etc/appliance/appliance.toml        configuration (root:appliance 0640; created once)
#   /var/lib/appliance                   database (StateDirectory, made by systemd)
#   /etc/systemd/system/appliance.service
#   /etc/udev/rules.d/99-sms-appliance.rules
#   /etc/modules-load.d/sms-appliance.conf   serial drivers loaded at boot (see the unit)
set -euo pipefail

SERVICE_USER=appliance
PREFIX=/opt/appliance
VENV="$PREFIX/venv"
CONF_DIR=/etc/appliance
CONF_FILE="$CONF_DIR/appliance.toml"
STATE_DIR=/var/lib/appliance
UNIT_FILE=/etc/systemd/system/appliance.service
RULES_FILE=/etc/udev/rules.d/99-sms-appliance.rules
MODULES_FILE=/etc/modules-load.d/sms-appliance.conf
BIN_LINK=/usr/local/bin/appliance
APT_PACKAGES=(python3 python3-venv usb-modeswitch usb-modeswitch-data)
MIN_PYTHON=3.11
# The distribution's Python: the service cannot see /root or /home (ProtectHome=yes), so a
# pyenv/conda python3 from root's PATH would give a venv the service cannot run.
PYTHON="${PYTHON:-/usr/bin/python3}"

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS=""

usage() {
    cat <<EOF
usage: $0 [--uninstall [--purge]] [--modemmanager=keep|stop|mask] [--no-start] [--no-apt] [--postgresql]

  --uninstall          stop and remove the service, program, unit, udev rules
  --purge              with --uninstall: also remove $CONF_DIR, $STATE_DIR and the user
  --modemmanager=MODE  keep (default: warn only), stop (stop and disable it) or mask
                       (stop it and prevent anything from starting it again)
  --no-start           install and enable, but do not (re)start the service
  --no-apt             do not install Debian packages (they must be present already)
  --postgresql         also install PostgreSQL support (psycopg over Debian's libpq5), for
                       several appliances sharing one database (README: Several appliances)
EOF
}

say()  { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# systemd as PID 1 (not a chroot or an image being built): start/stop/reload make sense.
systemd_running() { [ -d /run/systemd/system ]; }
unit_installed() { [ -n "$(systemctl list-unit-files --no-legend "$1" 2>/dev/null || true)" ]; }
udev_running() { command -v udevadm >/dev/null 2>&1 && [ -S /run/udev/control ]; }

ACTION=install
PURGE=0
MM_MODE=keep
START=1
APT=1
for arg in "$@"; do
    case "$arg" in
        --uninstall) ACTION=uninstall ;;
        --purge) PURGE=1 ;;
        --modemmanager=keep|--modemmanager=stop|--modemmanager=mask) MM_MODE="${arg#*=}" ;;
        --no-start) START=0 ;;
        --no-apt) APT=0 ;;
        --postgresql) EXTRAS="[postgresql]"; APT_PACKAGES+=(libpq5) ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $arg" ;;
    esac
done
[ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ] && die "--purge only goes with --uninstall"
[ "$(id -u)" = 0 ] || die "run me as root (sudo $0 $*)"

install_packages() {
    [ "$APT" = 1 ] || return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script is for Raspberry Pi OS / Debian"
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [ "$status" = "install ok installed" ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

check_python() {
    [ -x "$PYTHON" ] || die "$PYTHON not found (apt-get install python3)"
    "$PYTHON" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" \
        || die "$PYTHON is $("$PYTHON" -V 2>&1 | cut -d' ' -f2); the appliance needs >= $MIN_PYTHON (Raspberry Pi OS bookworm or newer)"
}

create_user() {
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        say "creating system user $SERVICE_USER"
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "SMS appliance" "$SERVICE_USER"
    fi
    # The unit adds dialout itself; membership also lets `sudo -u appliance appliance ...` open ports.
    case " $(id -nG "$SERVICE_USER") " in
        *" dialout "*) ;;
        *) usermod -a -G dialout "$SERVICE_USER" ;;
    esac
}

install_program() {
    if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        say "virtualenv $VENV is broken (its Python is gone?); recreating it"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtualenv $VENV with $PYTHON"
        install -d -m 0755 "$PREFIX"
        "$PYTHON" -m venv "$VENV"
    fi
    say "installing the appliance from $SRC into $VENV"
    # Dependencies first, then the project itself rebuilt even when its version is unchanged.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SRC$EXTRAS"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$SRC"
    runuser -u "$SERVICE_USER" -- "$VENV/bin/appliance" --help >/dev/null \
        || die "the installed appliance command does not run as user $SERVICE_USER"
    install -m 0644 "$SRC/hardware.md" "$PREFIX/hardware.md"
    if [ -L "$BIN_LINK" ] || [ ! -e "$BIN_LINK" ]; then
        ln -sfn "$VENV/bin/appliance" "$BIN_LINK"
    else
        warn "$BIN_LINK exists and is not a symlink; left alone (use $VENV/bin/appliance)"
    fi
}

install_config() {
    install -d -o root -g "$SERVICE_USER" -m 0750 "$CONF_DIR"
    install -o root -g "$SERVICE_USER" -m 0640 "$SRC/systemd/appliance.toml.example" "$CONF_DIR/appliance.toml.example"
    if [ -e "$CONF_FILE" ]; then
        say "keeping existing $CONF_FILE"
        CONFIG_IS_NEW=0
    else
        say "creating $CONF_FILE from the example: edit it before starting the service"
        install -o root -g "$SERVICE_USER" -m 0640 "$SRC/systemd/appliance.toml.example" "$CONF_FILE"
        CONFIG_IS_NEW=1
    fi
    "$VENV/bin/python" -c "import sys; from appliance.config import load_settings; load_settings(sys.argv[1])" "$CONF_FILE" \
        || warn "$CONF_FILE does not load; fix it before starting the service"
}

install_system_files() {
    say "installing systemd unit, udev rules and module list"
    install -m 0644 "$SRC/systemd/appliance.service" "$UNIT_FILE"
    install -m 0644 "$SRC/systemd/99-sms-appliance.rules" "$RULES_FILE"
    # The unit's DeviceAllow=char-ttyUSB/char-ttyACM resolve through /proc/devices when the
    # service starts, which lists ttyUSB/ttyACM only once these drivers are loaded.
    printf '# Serial drivers for the SMS appliance (see appliance.service, DeviceAllow=)\nusbserial\ncdc_acm\n' > "$MODULES_FILE"
    chmod 0644 "$MODULES_FILE"
    if command -v modprobe >/dev/null 2>&1; then
        modprobe usbserial 2>/dev/null || warn "could not load usbserial now; it loads at next boot"
        modprobe cdc_acm 2>/dev/null || warn "could not load cdc_acm now; it loads at next boot"
    fi
    if udev_running; then
        udevadm control --reload
        udevadm trigger --action=change --subsystem-match=tty --subsystem-match=usb
        udevadm settle --timeout=30 || warn "udev did not settle within 30 s"
    else
        warn "udev is not running here; the rules apply from the next boot"
    fi
}

handle_modemmanager() {
    local unit=ModemManager.service
    unit_installed "$unit" || return 0
    case "$MM_MODE" in
        keep)
            if systemd_running && systemctl is-active --quiet "$unit"; then
                warn "ModemManager is running. The udev rules tell it to leave known modems alone;" \
                     "to be sure, rerun with --modemmanager=stop or --modemmanager=mask"
            fi ;;
        stop)
            say "stopping and disabling ModemManager"
            systemctl disable "$unit" >/dev/null 2>&1 || true
            if systemd_running; then systemctl stop "$unit" || true; fi ;;
        mask)
            say "stopping and masking ModemManager (undo: systemctl unmask $unit)"
            if systemd_running; then systemctl stop "$unit" || true; fi
            systemctl mask "$unit" >/dev/null ;;
    esac
}

enable_service() {
    systemd_running && systemctl daemon-reload
    systemctl enable appliance.service >/dev/null
    say "appliance.service enabled"
    if ! systemd_running; then
        warn "systemd is not running here (chroot/container); the service starts at next boot"
    elif [ "$START" = 0 ]; then
        say "not started (--no-start): sudo systemctl start appliance"
    elif [ "${CONFIG_IS_NEW:-0}" = 1 ]; then
        say "not started: edit $CONF_FILE (sudo appliance modems scan helps), then: sudo systemctl start appliance"
    else
        systemctl restart appliance.service
        say "appliance.service (re)started; follow it with: journalctl -u appliance -f"
    fi
}

check_pi() {
    local cmdline
    for cmdline in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
        if [ -f "$cmdline" ] && grep -qE 'console=(serial0|ttyAMA0|ttyS0)' "$cmdline"; then
            warn "$cmdline starts a login console on the GPIO UART; a modem wired to serial0" \
                 "needs it off: raspi-config > Interface Options > Serial Port (login shell: No, hardware: Yes)"
            break
        fi
    done
    if command -v vcgencmd >/dev/null 2>&1; then
        local throttled
        throttled="$(vcgencmd get_throttled 2>/dev/null | cut -d= -f2 || true)"
        if [ -n "$throttled" ] && [ "$throttled" != 0x0 ]; then
            warn "vcgencmd get_throttled=$throttled: under-voltage or throttling seen since boot (hardware.md, Power)"
        fi
    fi
}

do_install() {
    if [ ! -f "$SRC/pyproject.toml" ] || [ ! -d "$SRC/appliance" ]; then
        die "$SRC is not a checkout of the appliance"
    fi
    install_packages
    check_python
    create_user
    install_program
    install_config
    install_system_files
    handle_modemmanager
    enable_service
    check_pi
    say "done"
}

do_uninstall() {
    if unit_installed appliance.service; then
        say "stopping and disabling appliance.service"
        if systemd_running; then systemctl stop appliance.service || true; fi
        systemctl disable appliance.service >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT_FILE" "$RULES_FILE" "$MODULES_FILE"
    [ -L "$BIN_LINK" ] && [ "$(readlink "$BIN_LINK")" = "$VENV/bin/appliance" ] && rm -f "$BIN_LINK"
    rm -rf "$PREFIX"
    systemd_running && systemctl daemon-reload
    udev_running && udevadm control --reload
    if [ "$PURGE" = 1 ]; then
        say "purging $CONF_DIR, $STATE_DIR and user $SERVICE_USER"
        rm -rf "$CONF_DIR" "$STATE_DIR"
        if getent passwd "$SERVICE_USER" >/dev/null; then userdel "$SERVICE_USER"; fi
        if getent group "$SERVICE_USER" >/dev/null; then groupdel "$SERVICE_USER"; fi
    else
        say "kept $CONF_DIR, $STATE_DIR and user $SERVICE_USER (--purge removes them)"
    fi
    if [ "$(systemctl is-enabled ModemManager.service 2>/dev/null || true)" = masked ]; then
        say "ModemManager stays masked; to restore it: systemctl unmask ModemManager && systemctl start ModemManager"
    fi
    say "done"
}

if [ "$ACTION" = uninstall ]; then do_uninstall; else do_install; fi
