#!/usr/bin/env bash
# System packages the test suite needs: Debian's Chromium (and a font) for the browser tests, and
# libmagic1 for AugLy (python-magic; `isc-kit augment` runs without it, AugLy's audio/video checks need it).
# Idempotent; installs only what is missing. Needs root (or sudo) the first time.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
{ ldconfig -p 2>/dev/null || true; } | grep -q "libmagic\.so\.1 " || need+=(libmagic1)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${need[*]}" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
