/** What a user without WebGPU can do about it; shown by the page and by the e2e failure. */
export const NO_WEBGPU_HINT =
  'Use a browser with WebGPU enabled (Chrome/Edge 113+, or Chromium started with --enable-unsafe-webgpu), ' +
  'served from http://localhost or https. For the headless tests on Debian, "sudo bash scripts/setup-system.sh" ' +
  'installs Chromium, and playwright.config.ts launches it with --enable-unsafe-webgpu (SwiftShader adapter).';
