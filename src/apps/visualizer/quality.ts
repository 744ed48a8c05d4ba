/**
 * Quality vs theoretical speedup from training/results.json (written by training/evaluate.py).
 * The file is bundled at build time when it exists; without it the panel says how to make it.
 */
import { h } from '../shared/dom.ts';
import { lineChart, type Series } from './line-chart.ts';

interface ResultsFile {
  corpus?: string;
  schedules: { schedule: string; speedup: number; speedup_generation?: number }[];
  models: Record<string, { about?: string; results: { schedule: string; bits_per_byte: number; rouge_l: number }[] }>;
}

// Eager glob: an absent file gives an empty record instead of a build error.
const found = import.meta.glob<ResultsFile>('/training/results.json', { eager: true, import: 'default' });

const COLORS = ['#2456c9', '#c2410c', '#0b7a5b', '#7c3aed', '#a16207'];

export function qualityResults(): ResultsFile | undefined {
  const r = Object.values(found)[0];
  return r && Array.isArray(r.schedules) && r.models ? r : undefined;
}

type Metric = 'bits_per_byte' | 'rouge_l';

function chart(r: ResultsFile, metric: Metric): SVGSVGElement {
  const series: Series[] = Object.entries(r.models).map(([name, m], i) => ({
    name: m.about ? `${name} (${m.about})` : name,
    color: COLORS[i % COLORS.length],
    points: m.results.flatMap((row, j) => {
      const s = r.schedules[j];
      return s ? [{ x: metric === 'rouge_l' ? (s.speedup_generation ?? s.speedup) : s.speedup, y: row[metric] }] : [];
    }),
  }));
  return lineChart({
    title: `${metric === 'rouge_l' ? 'ROUGE-L' : 'Bits per byte'} vs theoretical speedup`,
    xLabel: 'theoretical speedup (L / mean layers)',
    yLabel: metric === 'rouge_l' ? 'ROUGE-L (higher is better)' : 'bits per byte (lower is better)',
    series,
  });
}

/** Fills `slot` with the chart and its metric switch, or with the note when there are no results. */
export function renderQuality(slot: HTMLElement): boolean {
  const r = qualityResults();
  if (!r) {
    slot.replaceChildren(
      h(
        'p',
        { class: 'notice', id: 'quality-missing' },
        'No quality results yet. ',
        h('code', {}, 'python3 training/evaluate.py'),
        ' writes training/results.json (bits per byte and ROUGE-L of the trained model at each schedule); ' +
          'rebuild or reload the dev server and the curve appears here.',
      ),
    );
    return false;
  }
  const select = h(
    'select',
    { id: 'quality-metric' },
    h('option', { value: 'bits_per_byte' }, 'Bits per byte'),
    h('option', { value: 'rouge_l' }, 'ROUGE-L'),
  );
  const holder = h('div', { class: 'chart-holder' }, chart(r, 'bits_per_byte'));
  select.addEventListener('change', () => holder.replaceChildren(chart(r, select.value as Metric)));
  slot.replaceChildren(
    h('div', { class: 'row' }, h('label', { for: 'quality-metric' }, 'Quality measure'), select),
    holder,
    h('p', { class: 'hint' }, `${r.corpus ?? 'Held-out text'}; from training/results.json.`),
  );
  return true;
}
