#!/usr/bin/env bash
# Installs the system pieces the tests need, idempotently:
#   - Mesa lavapipe from bookworm-backports (Dawn rejects bookworm's Mesa 22),
#   - Debian's Chromium (Playwright drives it; we never download a browser),
#   - Debian's PyTorch with the pthread OpenBLAS, for the training recipe's smoke test (training/).
# As root on Debian it installs what is missing; elsewhere it prints what to do.
set -euo pipefail

LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.json
CHROMIUM=/usr/bin/chromium

have_lavapipe() {
  [ -f "$LVP_ICD" ] || return 1
  # Mesa >= 23 is what Dawn accepts; bookworm ships 22.
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
  dpkg --compare-versions "$v" ge 23 2>/dev/null
}
have_chromium() { [ -x "$CHROMIUM" ]; }
have_torch() { dpkg -s python3-torch libopenblas0-pthread >/dev/null 2>&1; }

missing=()
have_lavapipe || missing+=("lavapipe")
have_chromium || missing+=("chromium")
have_torch || missing+=("python3-torch")

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-system: lavapipe ($LVP_ICD), chromium ($CHROMIUM) and python3-torch present"
  exit 0
fi

is_debian=0
[ -f /etc/debian_version ] && is_debian=1
if [ "$(id -u)" -ne 0 ] || [ $is_debian -ne 1 ]; then
  cat >&2 <<MSG
setup-system: missing: ${missing[*]}
The GPU tests need real WebGPU adapters:
  - Node tier: Mesa lavapipe >= 23 (Debian: add 'deb http://deb.debian.org/debian bookworm-backports main'
    to apt sources, then 'apt-get install -t bookworm-backports mesa-vulkan-drivers'), or any GPU driver
    that Dawn's Vulkan backend accepts.
  - Browser tier: Chromium at $CHROMIUM (Debian: 'apt-get install chromium').
  - Training smoke test: PyTorch (Debian: 'apt-get install python3-torch libopenblas0-pthread').
Run this script as root on Debian to install them.
MSG
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian ${codename}-backports main" >/etc/apt/sources.list.d/backports.list
fi
apt-get update -qq
pkgs=()
have_chromium || pkgs+=(chromium fonts-liberation)
have_torch || pkgs+=(python3-torch libopenblas0-pthread)
if [ ${#pkgs[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; fi
if ! have_lavapipe; then
  apt-get install -y -qq --no-install-recommends -t "${codename}-backports" mesa-vulkan-drivers libvulkan1
fi
have_lavapipe && have_chromium && have_torch
echo "setup-system: installed ${missing[*]}"
