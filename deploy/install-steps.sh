#!/bin/sh
# Configure pullprintd once it is installed (the .deb, or the binary with its unit and sysusers file).
# Run as root. The README includes this script verbatim, and the deploy test runs it as written.
#
#   TENANT_ID=… CLIENT_ID=… QUEUE_PRINTER=… sh deploy/install-steps.sh   (asks for the client secret)
#
# TENANT_ID      Entra admin center → Overview → Tenant ID
# CLIENT_ID      the app registration's Application (client) ID
# QUEUE_PRINTER  the Universal Print printer whose jobs are held (Printers → the printer → Printer ID)
# STATION        the release station's name (default: lobby); it releases on QUEUE_PRINTER
# CLIENT_SECRET  read from standard input when not set (so it stays out of the shell history)
set -eu
: "${TENANT_ID:?set TENANT_ID}" "${CLIENT_ID:?set CLIENT_ID}" "${QUEUE_PRINTER:?set QUEUE_PRINTER}"
STATION="${STATION:-lobby}"
conf=/etc/pullprintd/pullprintd.toml

# 1. The account, the configuration folder (group-readable by the service) and the secrets folder
#    (root only: systemd hands the secrets to the service through LoadCredential=).
systemd-sysusers pullprintd.conf
install -d -m 0750 -o root -g pullprintd /etc/pullprintd
install -d -m 0700 -o root -g root /etc/pullprintd/secrets

# 2. The secrets: the client secret, and fresh random admin and station keys (kept when present).
umask 077
if [ ! -s /etc/pullprintd/secrets/client-secret ]; then
    if [ -z "${CLIENT_SECRET:-}" ]; then
        printf 'Client secret (Entra admin center → the app → Certificates & secrets): ' >&2
        read -r CLIENT_SECRET
    fi
    printf '%s\n' "$CLIENT_SECRET" > /etc/pullprintd/secrets/client-secret
fi
for key in admin.key "$STATION.key"; do
    [ -s "/etc/pullprintd/secrets/$key" ] ||
        tr -dc 'a-f0-9' < /dev/urandom | head -c 64 > "/etc/pullprintd/secrets/$key"
done

# 3. The configuration (written once; edit it afterwards, config/pullprintd.toml documents every key).
#    Secrets are named relative to this folder: read from /etc/pullprintd/secrets/ in a root shell,
#    from $CREDENTIALS_DIRECTORY in the service.
if [ ! -e "$conf" ]; then
    cat > "$conf" <<TOML
[graph]
tenant_id = "$TENANT_ID"
client_id = "$CLIENT_ID"
client_secret_file = "secrets/client-secret"

[printing]
task_definition_id = ""
queue_printers = ["$QUEUE_PRINTER"]

[intake]
mode = "poll"

[[stations]]
id = "$STATION"
printer_id = "$QUEUE_PRINTER"
key_file = "secrets/$STATION.key"

[api]
listen = "127.0.0.1:8080"
admin_key_file = "secrets/admin.key"
TOML
fi
chown root:pullprintd "$conf"
chmod 0640 "$conf"
pullprintd check-config --config "$conf" > /dev/null

# 4. setup: a Printer Administrator signs in with the code it prints; the task definition's id goes
#    into the configuration.
report=$(mktemp)
pullprintd setup --config "$conf" | tee "$report"
definition=$(sed -n 's/^task_definition_id = "\(.*\)"$/\1/p' "$report")
rm -f "$report"
[ -n "$definition" ] || { echo "setup did not finish: no task definition id (see above)" >&2; exit 1; }
sed -i "s/^task_definition_id = .*/task_definition_id = \"$definition\"/" "$conf"
chown root:pullprintd "$conf"
chmod 0640 "$conf"

# 5. doctor checks the credential, the permissions, the definition and the printers.
pullprintd doctor --config "$conf"

# 6. Start now and at every boot.
systemctl enable --now pullprintd
echo "pullprintd runs. Station key for the kiosk: /etc/pullprintd/secrets/$STATION.key"
