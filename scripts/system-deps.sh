#!/usr/bin/env bash
# Installs the Debian packages idsync needs, only those missing.
#   scripts/system-deps.sh demo   what `make demo` needs (Python venv)
#   scripts/system-deps.sh test   what `make test` needs (adds slapd, the python-ldap build deps, and chromium for the portal tests)
set -euo pipefail
want=(python3-venv python3-dev gcc)
if [ "${1:-demo}" = "test" ]; then
  want+=(slapd ldap-utils libldap2-dev libsasl2-dev chromium)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A python built outside Debian (pyenv, /usr/local) brings its own venv and headers.
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
if [ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then
  missing=("${missing[@]/python3-dev}")
fi
read -r -a missing <<< "${missing[*]}"
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
