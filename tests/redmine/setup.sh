#!/usr/bin/env bash
# A real Redmine for the Redmine connector's tests: Debian 12's redmine and redmine-sqlite
# packages, a template database prepared once, and (unless told otherwise) a server.
#
#   tests/redmine/setup.sh --install-only   install what is missing and prepare the template
#                                           database (CI runs this before `make test`)
#   tests/redmine/setup.sh --prepare        prepare the template only (never runs apt-get)
#   tests/redmine/setup.sh                  all of the above, then start a server in the
#                                           background and write where it is (see below)
#   tests/redmine/setup.sh --stop           stop the server this script started
#
# Idempotent: packages are installed only when missing and the template is rebuilt only
# when the installed Redmine changes. Everything lives in $STRATMAP_REDMINE_STATE
# (default /var/lib/stratmap-redmine):
#   template.sqlite3   migrated, default data (English), REST API on, login required, no
#                      e-mail notifications, WAL journal
#   admin-api-key      the admin's API key (mode 600; printed nowhere)
#   server.url         the started server's URL; server.pid, server.log, server/ its files
#
# The test fixture (tests/redmine/conftest.py) reuses a server this script started, else
# starts its own on a free port from a copy of the template and stops it at session end.
set -euo pipefail

STATE=${STRATMAP_REDMINE_STATE:-/var/lib/stratmap-redmine}
REDMINE=/usr/share/redmine
PORT=${STRATMAP_REDMINE_PORT:-3000}
MODE=${1:-serve}

log() { printf '== redmine: %s\n' "$*" >&2; }

installed() {
  [ -f "$REDMINE/Gemfile" ] && dpkg-query -W -f='${Status}' redmine-sqlite 2>/dev/null \
    | grep -q 'install ok installed'
}

install_packages() {
  if installed; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "cannot install: needs root and apt-get (Debian 12: redmine redmine-sqlite)"
    exit 2
  fi
  log "installing the Debian packages redmine and redmine-sqlite"
  # dbconfig-common asks which database to use; answer SQLite without a prompt.
  debconf-set-selections <<'EOF'
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
EOF
  export DEBIAN_FRONTEND=noninteractive
  local packages=(redmine redmine-sqlite ruby-webrick)
  # Try the package lists as they are first; refresh them only if that fails.
  if ! apt-get install -y -qq "${packages[@]}" >/tmp/stratmap-redmine-apt.log 2>&1; then
    apt-get update -qq
    apt-get install -y -qq "${packages[@]}" >/tmp/stratmap-redmine-apt.log 2>&1 || {
      tail -n 30 /tmp/stratmap-redmine-apt.log >&2
      exit 1
    }
  fi
}

rails_env() {
  # Redmine stores local times: pin the zone so the database holds UTC.
  export RAILS_ENV=production TZ=UTC REDMINE_LANG=en
}

prepare() {
  if ! installed; then
    log "Redmine is not installed: run $0 --install-only (as root, on Debian 12)"
    exit 2
  fi
  # Rails 6.1 on Ruby 3 no longer bundles webrick; Redmine reads Gemfile.local.
  if ! grep -qs "gem 'webrick'" "$REDMINE/Gemfile.local"; then
    echo "gem 'webrick'" >>"$REDMINE/Gemfile.local"
  fi
  local version
  # The recipe's own revision follows Redmine's version: bump it when the template changes.
  version="$(dpkg-query -W -f='${Version}' redmine)+stratmap2"
  if [ -f "$STATE/template.sqlite3" ] && [ -s "$STATE/admin-api-key" ] \
      && [ "$(cat "$STATE/template.version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  log "preparing the template database for Redmine $version"
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  local work="$STATE/template.new.sqlite3"
  rm -f "$work"
  (
    cd "$REDMINE"
    rails_env
    umask 077
    export DATABASE_URL="sqlite3:$work" KEY_FILE="$STATE/admin-api-key.new"
    bundle exec rake db:migrate >"$STATE/prepare.log" 2>&1
    bundle exec rake redmine:load_default_data >>"$STATE/prepare.log" 2>&1
    # shellcheck disable=SC2016
    bundle exec rails runner '
      Setting.rest_api_enabled = "1"
      Setting.login_required = "1"
      Setting.default_language = "en"
      # No e-mail: notification jobs run in threads of the server and hold SQLite locks.
      Setting.notified_events = []
      admin = User.find_by(login: "admin")
      admin.must_change_passwd = false
      admin.save!
      File.write(ENV.fetch("KEY_FILE"), admin.api_key)
      # Readers never block the writer (the tests backdate rows while the server runs).
      ActiveRecord::Base.connection.execute("PRAGMA journal_mode=WAL")
    ' >>"$STATE/prepare.log" 2>&1
  ) || { tail -n 30 "$STATE/prepare.log" >&2; exit 1; }
  mv "$STATE/admin-api-key.new" "$STATE/admin-api-key"
  mv "$work" "$STATE/template.sqlite3"
  echo "$version" >"$STATE/template.version"
}

answers() {
  curl -fsS -o /dev/null -H "X-Redmine-API-Key: $(cat "$STATE/admin-api-key")" \
    "$1/issues.json?limit=1" 2>/dev/null
}

serve() {
  local url="http://127.0.0.1:$PORT"
  if [ -f "$STATE/server.url" ] && answers "$(cat "$STATE/server.url")"; then
    log "already running at $(cat "$STATE/server.url")"
    echo "REDMINE_URL=$(cat "$STATE/server.url")"
    echo "REDMINE_API_KEY_FILE=$STATE/admin-api-key"
    return
  fi
  mkdir -p "$STATE/server"
  cp "$STATE/template.sqlite3" "$STATE/server/redmine.sqlite3"
  rm -f "$STATE/server.pid"
  (
    cd "$REDMINE"
    rails_env
    export DATABASE_URL="sqlite3:$STATE/server/redmine.sqlite3?timeout=10000"
    export RAILS_LOG_TO_STDOUT=1
    setsid bundle exec rails server -u webrick -b 127.0.0.1 -p "$PORT" \
      -P "$STATE/server.pid" >"$STATE/server.log" 2>&1 </dev/null &
  )
  local started=$SECONDS
  until answers "$url"; do
    if [ $((SECONDS - started)) -gt 120 ]; then
      tail -n 30 "$STATE/server.log" >&2
      log "the server did not answer within 120 s"
      exit 1
    fi
    sleep 0.5
  done
  echo "$url" >"$STATE/server.url"
  log "running at $url after $((SECONDS - started)) s (stop: $0 --stop)"
  echo "REDMINE_URL=$url"
  echo "REDMINE_API_KEY_FILE=$STATE/admin-api-key"
}

stop() {
  if [ -f "$STATE/server.pid" ]; then
    local pid
    pid=$(cat "$STATE/server.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    rm -f "$STATE/server.pid"
  fi
  rm -f "$STATE/server.url"
}

case "$MODE" in
  --install-only) install_packages; prepare ;;
  --prepare) prepare ;;
  --stop) stop ;;
  serve) install_packages; prepare; serve ;;
  *) echo "usage: $0 [--install-only | --prepare | --stop]" >&2; exit 64 ;;
esac
