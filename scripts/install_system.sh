#!/usr/bin/env bash
# Installs the system packages Shequ GIS needs, from Debian's packages, when they are missing:
# PostgreSQL 15 + PostGIS 3 (the embedded database), Chromium (browser tests), Node.js/npm (web assets),
# CJK fonts (Chinese text in screenshots; a TrueType one, WenQuanYi Zen Hei, to embed in PDFs),
# poppler-utils (tests render PDFs to PNG). Idempotent: does nothing when all are present.
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
[ -f /usr/share/postgresql/15/extension/postgis.control ] || need+=(postgresql-15-postgis-3)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
dpkg-query -W -f='${Status}' fonts-wqy-zenhei 2>/dev/null | grep -q "ok installed" || need+=(fonts-wqy-zenhei)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" || need+=(fonts-noto-cjk)

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages missing: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: not root and no sudo; fix: apt-get install ${need[*]} as root" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a system cluster on 5432 when it installs postgresql; the product runs its own.
echo "installed: ${need[*]}"
