#!/usr/bin/env bash
# What `npm test` runs: system check, Node GPU check, the Node tier (vitest), the browser tier (Playwright).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh

LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$LVP_ICD" ]; then
  # Without it Dawn may pick a hardware ICD that cannot run here; a real GPU user can set their own.
  export VK_ICD_FILENAMES="$LVP_ICD"
fi

npx tsx scripts/check-gpu.ts

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Both tiers always run; their summaries are repeated at the end so neither scrolls away.
status=0
echo "== Node tier: vitest =="
npx vitest run 2>&1 | tee "$logs/vitest" || status=1
echo "== Browser tier: playwright (headless Chromium, WebGPU) =="
npx playwright test 2>&1 | tee "$logs/playwright" || status=1

strip() { sed -e 's/\x1b\[[0-9;]*m//g' "$1"; }
echo
echo "== Summary =="
echo "vitest:"
strip "$logs/vitest" | grep -E '^ *(Test Files|Tests) ' || echo "  (no summary: vitest did not finish)"
echo "playwright:"
strip "$logs/playwright" | grep -E '^ *[0-9]+ (passed|failed|flaky|skipped|did not run)' ||
  echo "  (no summary: playwright did not finish)"
exit $status
