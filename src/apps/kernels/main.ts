/**
 * The kernel-check page: asks for a WebGPU device on the main thread (to show what the user has),
 * then runs the linear kernel in a dedicated worker and compares it with the CPU reference.
 * The settled state is also published on `window.kernelProbe` for the e2e tests.
 */
import * as Comlink from 'comlink';
import { Gpu, NO_WEBGPU_HINT, NoAdapterError, viteShaders } from './internals.ts';
import {
  DEFAULT_CASES,
  type AdapterReport,
  type KernelProbeApi,
  type LinearResult,
  type PageState,
} from './probe-types.ts';

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html lacks #${id}`);
  return e as T;
}

function publish(state: PageState): void {
  window.kernelProbe = state;
  document.body.dataset.state = state.state;
}

function message(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function cell(row: HTMLTableRowElement, text: string, className?: string): void {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

function showNoWebGpu(reason: string): void {
  el('no-webgpu').hidden = false;
  el('no-webgpu-reason').textContent = reason;
  el('no-webgpu-hint').textContent = NO_WEBGPU_HINT;
  el('device-status').textContent = 'No WebGPU device.';
  el('kernel-status').textContent = 'Skipped: the kernels need WebGPU.';
}

function showAdapter(adapter: AdapterReport): void {
  el('device-status').textContent = 'WebGPU device ready.';
  el('adapter-name').textContent = adapter.name;
  el('device-info').hidden = false;
  const table = el<HTMLTableElement>('limits');
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [key, value] of Object.entries(adapter.limits)) {
    const row = body.insertRow();
    cell(row, key);
    cell(row, value.toLocaleString('en-US'), 'num');
  }
  table.hidden = false;
}

function showResults(results: LinearResult[]): void {
  const table = el<HTMLTableElement>('kernel-results');
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const r of results) {
    const c = r.case;
    const row = body.insertRow();
    cell(row, c.name);
    cell(row, `${c.rows} × ${c.inFeatures} → ${c.outFeatures}`);
    cell(row, c.dtype);
    cell(row, r.maxAbsError.toExponential(2), 'num');
    cell(row, r.tolerance.toExponential(2), 'num');
    cell(row, r.ok ? 'match' : 'MISMATCH', r.ok ? 'ok' : 'bad');
    cell(row, Number.isNaN(r.msPerRun) ? '—' : `${r.msPerRun.toFixed(3)} ms`, 'num');
  }
  table.hidden = false;
  const failed = results.filter((r) => !r.ok).length;
  el('kernel-status').textContent = failed
    ? `${failed} of ${results.length} cases differ from the CPU reference.`
    : `All ${results.length} cases match the CPU reference.`;
}

async function deviceInfo(): Promise<AdapterReport> {
  // No hint in the error: the page shows it on its own line.
  const gpu = await Gpu.create(navigator.gpu, viteShaders);
  const report = { name: gpu.adapterName, limits: { ...gpu.limits } };
  // The worker makes its own device; this one was only for the report.
  gpu.device.destroy();
  return report;
}

let probe: Comlink.Remote<KernelProbeApi> | undefined;

async function runKernels(adapter: AdapterReport): Promise<void> {
  const button = el<HTMLButtonElement>('rerun');
  button.disabled = true;
  el('kernel-status').textContent = 'Running the linear kernel in a worker…';
  try {
    probe ??= Comlink.wrap<KernelProbeApi>(
      new Worker(new URL('./kernel-probe.ts', import.meta.url), { type: 'module', name: 'kernel-probe' }),
    );
    const report = await probe.linear(DEFAULT_CASES);
    showResults(report.results);
    publish({ state: 'done', adapter, report });
  } catch (e) {
    el('kernel-status').textContent = `The kernel check failed: ${message(e)}`;
    publish({ state: 'error', error: message(e), adapter });
  } finally {
    button.hidden = false;
    button.disabled = false;
  }
}

async function main(): Promise<void> {
  publish({ state: 'running' });
  let adapter: AdapterReport;
  try {
    adapter = await deviceInfo();
  } catch (e) {
    if (e instanceof NoAdapterError) {
      showNoWebGpu(e.message);
      publish({ state: 'no-webgpu', error: e.message });
    } else {
      el('device-status').textContent = `Could not create a WebGPU device: ${message(e)}`;
      publish({ state: 'error', error: message(e) });
    }
    return;
  }
  showAdapter(adapter);
  el('rerun').addEventListener('click', () => void runKernels(adapter));
  await runKernels(adapter);
}

void main();
