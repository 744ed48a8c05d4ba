/**
 * The visualizer page: full depth vs a schedule side by side with heatmaps, the batch-size speedup
 * measurements with their chart and exports, and the quality curve from training. Page state is on
 * body[data-state] (no-webgpu, loading, ready, comparing, measuring, error) for tests.
 */
import type { Schedule } from '../../index.ts';
import type { AppModel, GenerateOutput } from '../shared/backend.ts';
import { byId, fmt, formatBytes, h } from '../shared/dom.ts';
import { ModelPanel } from '../shared/model-panel.ts';
import { PRESETS } from '../shared/presets.ts';
import { checkWebGpu, describeProblem, type Problem } from '../shared/problems.ts';
import { ScheduleForm } from '../shared/schedule-form.ts';
import { Heatmap } from './heatmap.ts';
import { lineChart, type Series } from './line-chart.ts';
import { BATCH_SIZES, download, measureSpeedups, toCsv, toJson, type Measurement } from './measure.ts';
import { renderQuality } from './quality.ts';

type State = 'checking' | 'no-webgpu' | 'loading' | 'ready' | 'comparing' | 'measuring' | 'error';

let model: AppModel | undefined;
let running: AbortController | undefined;
let rows: Measurement[] = [];

const newTokens = byId<HTMLInputElement>('new-tokens');
const tokens = () => Math.min(256, Math.max(2, Math.round(Number(newTokens.value) || 32)));

function setState(state: State): void {
  document.body.dataset.state = state;
  const idle = state === 'ready';
  byId<HTMLButtonElement>('compare').disabled = !idle;
  byId<HTMLButtonElement>('measure').disabled = !idle;
  byId<HTMLButtonElement>('stop').disabled = state !== 'comparing';
  byId<HTMLButtonElement>('measure-stop').disabled = state !== 'measuring';
  byId<HTMLButtonElement>('export-json').disabled = rows.length === 0 || state === 'measuring';
  byId<HTMLButtonElement>('export-csv').disabled = rows.length === 0 || state === 'measuring';
}

function showProblem(p: Problem | undefined): void {
  byId('problem').hidden = !p;
  if (!p) return;
  if (p.kind === 'device-lost') {
    // Nothing runs on a lost device: drop the engine and let "Load model" start over.
    model = undefined;
    void panel.reset();
  }
  byId('problem-title').textContent = p.title;
  byId('problem-detail').textContent = p.detail;
}

const schedule = new ScheduleForm({ initial: '3x' });
const panel = new ModelPanel({
  onLoading() {
    model = undefined;
    showProblem(undefined);
    setState('loading');
  },
  onLoaded(l) {
    model = l.model;
    byId('random-note').hidden = !l.choice.random;
    schedule.configure(l.model.info.layers, tokens());
    setState('ready');
  },
  onError(p) {
    showProblem(p);
    setState('error');
  },
});
byId('model-slot').append(panel.element);
byId('schedule-slot').append(schedule.element);
newTokens.addEventListener('input', () => schedule.configure(model?.info.layers ?? 12, tokens()));

function stats(list: Element, items: [string, string][]): void {
  list.replaceChildren(...items.map(([k, v]) => h('li', {}, `${k} `, h('strong', {}, v))));
}

/** Streams one run into a pane: text of sequence 0, live steps/s, and the heatmap column by column. */
async function runPane(
  pane: HTMLElement,
  m: AppModel,
  s: Schedule,
  batch: number,
  signal: AbortSignal,
  exact?: { draftTokens: number },
) {
  const L = m.info.layers;
  const n = tokens();
  const heat = new Heatmap(
    L,
    n,
    `Layers run at each position, ${s.kind === 'full' ? 'full depth' : exact ? 'drafted by the schedule, verified at full depth' : 'with the schedule'}`,
  );
  pane.querySelector('.heatmap-slot')!.replaceChildren(heat.element);
  const text = pane.querySelector('.text')!;
  const live = pane.querySelector('.stats')!;
  text.textContent = '';
  stats(live, [['status', 'waiting…']]);
  const prompt = byId<HTMLTextAreaElement>('prompt').value;
  const stream = m.stream({
    prompts: Array.from({ length: batch }, () => prompt),
    maxNewTokens: n,
    schedule: s,
    exact,
    eosTokenId: null,
    signal,
  });
  for await (const chunk of stream) {
    // An abort's closing chunk ran no layers: it leaves the heatmap as it is.
    if (chunk.layers.length) heat.fill(chunk.step, chunk.layers);
    const verdict = chunk.verdicts?.[0];
    if (verdict) heat.mark(chunk.step, verdict);
    text.append(chunk.deltas[0] ?? '');
    const m = chunk.metrics;
    if (m.decodeSteps >= 1) {
      stats(live, [
        ['step', `${m.decodeSteps} / ${n - 1}`],
        ['decode', m.decodeTokensPerSecond > 0 ? `${fmt(m.decodeTokensPerSecond)} tok/s` : '…'],
        ['mean layers', `${fmt(m.meanLayers)} / ${L}`],
      ]);
    }
  }
  const out = await stream.result;
  stats(live, finalStats(out, L, batch));
  return out;
}

function finalStats(out: GenerateOutput, L: number, batch: number): [string, string][] {
  const s = out.metrics.speculative;
  return [
    ['decode', `${fmt(out.metrics.decodeTokensPerSecond)} tok/s${batch > 1 ? ` (${batch} seqs)` : ''}`],
    ['mean layers', `${fmt(out.metrics.meanLayers)} / ${L}`],
    ['theoretical', `${fmt(out.metrics.theoreticalSpeedup, 2)}×`],
    ...(out.metrics.weightBytesPerPosition !== undefined
      ? ([['weights/token', formatBytes(out.metrics.weightBytesPerPosition)]] as [string, string][])
      : []),
    ...(s
      ? ([
          ['acceptance', `${fmt(s.acceptanceRate * 100, 0)}% (${s.accepted}/${s.drafted})`],
          ['bound', `${fmt(out.metrics.boundSpeedup ?? 1, 2)}×`],
        ] as [string, string][])
      : []),
  ];
}

async function compare(): Promise<void> {
  if (!model) return;
  let s: Schedule;
  try {
    s = schedule.schedule();
  } catch (e) {
    showProblem(describeProblem(e));
    return;
  }
  showProblem(undefined);
  const batch = Number(byId<HTMLSelectElement>('batch').value);
  running = new AbortController();
  setState('comparing');
  try {
    const full = await runPane(byId('pane-full'), model, { kind: 'full' }, batch, running.signal);
    const exact = schedule.exact();
    const skip = await runPane(byId('pane-skip'), model, s, batch, running.signal, exact);
    // Exact mode's forwards do not each yield a token: compare tokens/s (the same batch on both sides).
    const measured = skip.metrics.decodeTokensPerSecond / full.metrics.decodeTokensPerSecond;
    const list = byId('pane-skip').querySelector('.stats')!;
    list.append(h('li', {}, 'measured ', h('strong', {}, `${fmt(measured, 2)}×`)));
    byId('skip-heading').textContent = exact ? `Exact, drafted by ${skip.schedule}` : `With ${skip.schedule}`;
  } catch (e) {
    const p = describeProblem(e);
    if (p.kind !== 'aborted') showProblem(p);
  } finally {
    running = undefined;
    setState(model ? 'ready' : 'error');
  }
}

const COLORS: Record<string, string> = { '2x': '#2456c9', '3x': '#c2410c', '5x': '#0b7a5b' };

function drawChart(): void {
  const series: Series[] = [];
  for (const p of PRESETS.filter((x) => x.id !== 'full')) {
    const mine = rows.filter((r) => r.preset === p.id);
    if (mine.length === 0) continue;
    const color = COLORS[p.id] ?? '#666';
    series.push({
      name: `${p.label} measured`,
      color,
      points: mine.map((r) => ({ x: r.batch, y: r.measuredSpeedup })),
    });
    series.push({
      name: `${p.label} theoretical`,
      color,
      dashed: true,
      points: mine.map((r) => ({ x: r.batch, y: r.theoreticalSpeedup })),
    });
  }
  const holder = byId('speedup-chart');
  if (series.length === 0) return void holder.replaceChildren();
  holder.replaceChildren(
    lineChart({
      title: 'Theoretical vs measured speedup by batch size',
      xLabel: 'batch size',
      yLabel: 'speedup over full depth (×)',
      series,
      xTicks: BATCH_SIZES,
      logX: true,
      reference: 1,
      yMin: 0,
    }),
  );
}

function addRow(r: Measurement): void {
  const table = byId<HTMLTableElement>('measure-table');
  table.hidden = false;
  const tr = table.tBodies[0].insertRow();
  const cells: [string, boolean][] = [
    [String(r.batch), false],
    [r.preset === 'full' ? 'full' : r.schedule, false],
    [fmt(r.meanLayers), true],
    [`${fmt(r.theoreticalSpeedup, 2)}×`, true],
    [r.boundSpeedup === null ? '—' : `${fmt(r.boundSpeedup, 2)}×`, true],
    [fmt(r.tokensPerSecond), true],
    [`${fmt(r.measuredSpeedup, 2)}×`, true],
  ];
  for (const [text, num] of cells) {
    const td = tr.insertCell();
    td.textContent = text;
    if (num) td.className = 'num';
  }
}

async function measure(): Promise<void> {
  if (!model) return;
  rows = [];
  byId<HTMLTableElement>('measure-table').tBodies[0].replaceChildren();
  drawChart();
  running = new AbortController();
  setState('measuring');
  const status = byId('measure-status');
  try {
    const n = Math.max(4, Math.round(Number(byId<HTMLInputElement>('measure-tokens').value) || 24));
    const repeats = Math.min(9, Math.max(1, Math.round(Number(byId<HTMLInputElement>('measure-repeats').value) || 1)));
    await measureSpeedups(model, {
      newTokens: n,
      repeats,
      prompt: byId<HTMLTextAreaElement>('prompt').value,
      signal: running.signal,
      onProgress(done, total, row) {
        status.textContent = `Measuring… ${done} of ${total} runs`;
        if (row) {
          rows.push(row);
          addRow(row);
          drawChart();
        }
      },
    });
    status.textContent = `Done: ${rows.length} measurements on ${model.info.adapter}.`;
  } catch (e) {
    const p = describeProblem(e);
    status.textContent = p.kind === 'aborted' ? `Cancelled after ${rows.length} measurements.` : p.title;
    if (p.kind !== 'aborted') showProblem(p);
  } finally {
    running = undefined;
    setState(model ? 'ready' : 'error');
  }
}

byId('compare').addEventListener('click', () => void compare());
byId('stop').addEventListener('click', () => running?.abort());
byId('measure').addEventListener('click', () => void measure());
byId('measure-stop').addEventListener('click', () => running?.abort());
byId('export-json').addEventListener('click', () =>
  download('skipdecode-speedups.json', 'application/json', toJson(rows)),
);
byId('export-csv').addEventListener('click', () => download('skipdecode-speedups.csv', 'text/csv', toCsv(rows)));

async function main(): Promise<void> {
  setState('checking');
  renderQuality(byId('quality-slot'));
  const problem = await checkWebGpu();
  await panel.init();
  if (problem) {
    showProblem(problem);
    setState('no-webgpu');
    return;
  }
  if (panel.selected?.offline) await panel.load();
  else setState('error');
}

void main();
