/**
 * Model picker with download progress and cache status, shared by the chat and the visualizer.
 * Loading goes through sharedModel(), so a page holds one engine however many panels ask.
 */
import {
  forget,
  modelKey,
  releaseOthers,
  sharedModel,
  type AppModel,
  type LoadProgress,
  type WeightFormat,
} from './backend.ts';
import { cachedSpecs, modelChoices, type ModelChoice } from './catalog.ts';
import { formatBytes, h, uniqueId } from './dom.ts';
import { describeProblem, type Problem } from './problems.ts';

export interface LoadedChoice {
  choice: ModelChoice;
  model: AppModel;
  weights: WeightFormat;
}

// Weight formats the panel offers, with the GPU bytes each keeps of an f16 checkpoint's.
const FORMATS: { value: WeightFormat; label: string; share: number }[] = [
  { value: 'checkpoint', label: 'As published (f16)', share: 1 },
  { value: 'int8', label: 'int8 (about half the memory)', share: 0.5 },
  { value: 'q4', label: 'q4 (about a quarter)', share: 0.28 },
];

export interface ModelPanelEvents {
  onLoading(choice: ModelChoice): void;
  onLoaded(loaded: LoadedChoice): void;
  onError(problem: Problem, choice: ModelChoice): void;
}

export class ModelPanel {
  readonly element: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly format: HTMLSelectElement;
  private readonly loadButton: HTMLButtonElement;
  private readonly note: HTMLElement;
  private readonly cacheLine: HTMLElement;
  private readonly progress: HTMLProgressElement;
  private readonly progressText: HTMLElement;
  private choices: ModelChoice[] = [];
  private busy = false;
  current?: LoadedChoice;

  constructor(private readonly events: ModelPanelEvents) {
    const selectId = uniqueId('model');
    const noteId = `${selectId}-note`;
    this.select = h('select', { id: selectId, name: 'model', 'aria-describedby': noteId });
    const formatId = `${selectId}-weights`;
    this.format = h(
      'select',
      { id: formatId, name: 'weights' },
      ...FORMATS.map((f) => h('option', { value: f.value }, f.label)),
    );
    this.loadButton = h('button', { type: 'button', class: 'primary' }, 'Load model');
    this.note = h('p', { id: noteId, class: 'hint' });
    this.cacheLine = h('p', { class: 'cache-line', role: 'status', 'aria-live': 'polite' });
    this.progress = h('progress', { max: 1, value: 0, 'aria-label': 'Model download progress' });
    this.progressText = h('span', { class: 'progress-text' });
    this.element = h(
      'div',
      { class: 'model-panel' },
      h('label', { for: selectId }, 'Model'),
      h('div', { class: 'row' }, this.select, this.loadButton),
      h('label', { for: formatId }, 'Weights'),
      h('div', { class: 'row' }, this.format),
      this.note,
      h('div', { class: 'progress-row', hidden: true }, this.progress, this.progressText),
      this.cacheLine,
    );
    this.select.addEventListener('change', () => this.describe());
    this.format.addEventListener('change', () => this.describe());
    this.loadButton.addEventListener('click', () => void this.load());
  }

  get selected(): ModelChoice | undefined {
    return this.choices[this.select.selectedIndex];
  }

  get weights(): WeightFormat {
    return FORMATS[this.format.selectedIndex]?.value ?? 'checkpoint';
  }

  private isCurrent(c: ModelChoice): boolean {
    return this.current?.choice.spec === c.spec && this.current.weights === this.weights;
  }

  /** Fills the picker; the first choice is the bundled model when there is one. */
  async init(): Promise<void> {
    this.choices = await modelChoices();
    const cached = await cachedSpecs();
    this.select.replaceChildren(
      ...this.choices.map((c) => {
        const size = c.bytes ? ` · ${formatBytes(c.bytes)}` : '';
        const state = c.offline ? '' : cached.has(c.spec) ? ' · cached' : '';
        return h('option', { value: c.spec }, `${c.label}${size}${state}`);
      }),
    );
    this.describe(cached);
  }

  private describe(cached?: Map<string, unknown>): void {
    const c = this.selected;
    if (!c) return;
    const share = FORMATS[this.format.selectedIndex]?.share ?? 1;
    const gpu = c.bytes && share < 1 ? ` In ${this.weights}: about ${formatBytes(c.bytes * share)} of GPU memory.` : '';
    this.note.textContent = c.note + gpu;
    this.note.classList.toggle('warn', c.random);
    const show = (isCached: boolean) => {
      this.cacheLine.textContent = c.offline
        ? 'Bundled with this site: loads without a network.'
        : isCached
          ? 'Cached in this browser: loads offline, no download.'
          : `Not downloaded yet: the first load fetches ${c.bytes ? formatBytes(c.bytes) : 'the weights'} and caches them.`;
    };
    if (cached) show(cached.has(c.spec));
    else void cachedSpecs().then((m) => show(m.has(c.spec)));
    this.loadButton.textContent = this.isCurrent(c) ? 'Loaded' : 'Load model';
    this.loadButton.disabled = this.busy || this.isCurrent(c);
  }

  /** Loads the selected model (the bundled one at start), freeing the previous one first. */
  async load(): Promise<LoadedChoice | undefined> {
    const choice = this.selected;
    if (!choice || this.busy) return undefined;
    this.busy = true;
    const weights = this.weights;
    const key = modelKey(choice.spec, weights);
    this.select.disabled = true;
    this.format.disabled = true;
    this.loadButton.disabled = true;
    this.loadButton.textContent = 'Loading…';
    this.events.onLoading(choice);
    const row = this.progress.parentElement!;
    row.hidden = false;
    this.progress.removeAttribute('value');
    this.progressText.textContent = 'Starting…';
    try {
      await releaseOthers(key);
      this.current = undefined;
      const model = await sharedModel(choice.spec, (p) => this.showProgress(p), weights);
      this.current = { choice, model, weights };
      this.progress.value = 1;
      this.progress.max = 1;
      const format = weights === 'checkpoint' ? '' : ` (${weights})`;
      this.progressText.textContent = `Ready · ${formatBytes(model.info.gpuBytes)}${format} on ${model.info.adapter || 'the GPU'}`;
      this.events.onLoaded(this.current);
      return this.current;
    } catch (e) {
      row.hidden = true;
      this.events.onError(describeProblem(e), choice);
      return undefined;
    } finally {
      this.busy = false;
      this.select.disabled = false;
      this.format.disabled = false;
      void this.init().then(() => {
        this.select.value = (this.current?.choice ?? choice).spec;
        this.describe();
      });
    }
  }

  /** After a device loss: drop the engine so the next load starts over. */
  async reset(): Promise<void> {
    if (this.current) await forget(modelKey(this.current.choice.spec, this.current.weights));
    this.current = undefined;
    this.describe();
  }

  private showProgress(p: LoadProgress): void {
    if (p.phase === 'gpu') {
      this.progress.removeAttribute('value');
      this.progressText.textContent = 'Uploading weights to the GPU…';
      return;
    }
    if (p.phase === 'ready') return;
    if (p.totalBytes) {
      this.progress.max = p.totalBytes;
      this.progress.value = p.loadedBytes;
      const pct = Math.floor((100 * p.loadedBytes) / p.totalBytes);
      const from = p.fromCache ? ' from the cache' : '';
      this.progressText.textContent = `${formatBytes(p.loadedBytes)} of ${formatBytes(p.totalBytes)} (${pct}%)${from}`;
    } else {
      this.progressText.textContent = `${formatBytes(p.loadedBytes)} read`;
    }
  }
}
