#!/usr/bin/env bash
# What `npm test` runs: system check, Node GPU check, the Node tier (vitest), the browser tier
# (Playwright), the training recipe's smoke test (Python), then typecheck + lint + format check.
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
echo "== Training recipe: smoke test (Debian's python3 + PyTorch) =="
/usr/bin/python3 -m unittest -v training/smoke_test.py 2>&1 | tee "$logs/training" || status=1
echo "== npm run check: typecheck, lint, format =="
npm run --silent check 2>&1 | tee "$logs/check" || status=1

strip() { sed -e 's/\x1b\[[0-9;]*m//g' "$1"; }
echo
echo "== Summary =="
echo "vitest:"
strip "$logs/vitest" | grep -E '^ *(Test Files|Tests) ' || echo "  (no summary: vitest did not finish)"
echo "playwright:"
strip "$logs/playwright" | grep -E '^ *[0-9]+ (passed|failed|flaky|skipped|did not run)' ||
  echo "  (no summary: playwright did not finish)"
echo "training smoke test:"
grep -E '^(Ran [0-9]+ tests|OK|FAILED)' "$logs/training" | sed 's/^/  /' || echo "  (no summary: unittest did not finish)"

# One closing line over all three runners: N passed, N failed.
num() {
  local v
  v=$(strip "$1" | grep -E "$2" | grep -oE "[0-9]+ $3" | grep -oE '[0-9]+' | head -n 1 || true)
  echo "${v:-0}"
}
passed=$(($(num "$logs/vitest" '^ +Tests ' passed) + $(num "$logs/playwright" '^ +[0-9]+ passed' passed)))
failed=$(($(num "$logs/vitest" '^ +Tests ' failed) + $(num "$logs/playwright" '^ +[0-9]+ failed' failed)))
ran=$(grep -oE '^Ran [0-9]+ tests' "$logs/training" | grep -oE '[0-9]+' || echo 0)
if grep -qE '^OK' "$logs/training"; then passed=$((passed + ran)); else failed=$((failed + ran)); fi
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "$passed passed, $failed failed"
exit $status
