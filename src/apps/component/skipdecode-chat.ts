/**
 * <skipdecode-chat>: a small chat box backed by the SkipDecode runtime, for any page.
 *
 *   import { defineSkipDecodeChat } from 'skipdecode-web/component';
 *   defineSkipDecodeChat();
 *   <skipdecode-chat model="facebook/opt-125m" schedule="2x" max-new-tokens="48" temperature="0.7"></skipdecode-chat>
 *
 * Attributes: model (a hub id or a model's base URL; a page may give names of its own meaning with
 * `defineSkipDecodeChat(tag, { resolveModel })`, as the demo site does for its bundled "demo"),
 * schedule (full, 2x, 3x, 5x, or a schedule string like "linear:max=12,min=4,warmup=1,span=16"),
 * max-new-tokens (default 32), temperature (default: the model's generation_config.json, else 0.7;
 * 0 is greedy; top-p, top-k and the repetition penalty come from the same file, else 0.95, 50, 1.1), exact (present: the schedule
 * only drafts and full depth verifies, so replies are the full model's; a number value is the draft
 * length K, default 4), placeholder, lazy (load on the first message instead of at once). Reflects state="loading|ready|generating|error".
 * Events (bubbling, composed): ready, token, done, error; see the *Detail types.
 * Parts: container, header, title, status, progress, note, log, message, user, assistant, stats,
 * form, input, send-button, stop-button. Custom properties: --skipdecode-accent, -accent-contrast,
 * -background, -color, -muted, -border-color, -user-background, -model-background, -radius, -font,
 * -font-size, -height.
 *
 * Every element on a page asking for the same model shares one engine (and its worker).
 */
import { parseSchedule, type GenerateOutput, type GenerationEngine, type Schedule } from '../../index.ts';
import { forget, sharedModel } from '../shared/backend.ts';
import { formatBytes } from '../shared/dom.ts';
import { describeProblem, type ProblemKind } from '../shared/problems.ts';
import { PRESETS, presetSchedule } from '../shared/presets.ts';
import { COMPONENT_SAMPLING } from '../shared/sampling-defaults.ts';
import { replyRequest, type Turn } from '../shared/transcript.ts';
import { STYLES } from './styles.ts';
import type {
  DefineSkipDecodeChatOptions,
  SkipDecodeChatState,
  SkipDecodeDoneDetail,
  SkipDecodeErrorDetail,
  SkipDecodeModelResolver,
  SkipDecodeReadyDetail,
  SkipDecodeTokenDetail,
} from './types.ts';

export type * from './types.ts';

// Lets the module load where there is no DOM (a Node import of the library); defining needs one.
const Base = (globalThis.HTMLElement ?? class {}) as typeof HTMLElement;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string>,
  text = '',
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

export class SkipDecodeChatElement extends Base {
  static get observedAttributes(): string[] {
    return ['model', 'placeholder'];
  }

  /** How this class reads `model` attributes; defineSkipDecodeChat() may register a subclass with its own. */
  static resolveModel: SkipDecodeModelResolver = (model) => ({ spec: model.trim(), label: model.trim() });

  private readonly root: ShadowRoot;
  private readonly titleEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly progress: HTMLProgressElement;
  private readonly note: HTMLElement;
  private readonly log: HTMLOListElement;
  private readonly input: HTMLInputElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly stopButton: HTMLButtonElement;
  private given?: GenerationEngine;
  private loading?: Promise<GenerationEngine>;
  private loadedFor?: string;
  /** What sharedModel() was asked for, to forget it after a device loss. */
  private spec?: string;
  private running?: AbortController;
  private turns: Turn[] = [];

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    const style = el('style', {}, STYLES);
    const container = el('div', { part: 'container', class: 'container' });
    const header = el('div', { part: 'header', class: 'header' });
    this.titleEl = el('span', { part: 'title', class: 'title' }, 'SkipDecode chat');
    this.statusEl = el('span', { part: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });
    header.append(this.titleEl, this.statusEl);
    this.progress = el('progress', { part: 'progress', max: '1', 'aria-label': 'Model download' });
    this.progress.hidden = true;
    this.note = el('p', { part: 'note', class: 'note' });
    this.note.hidden = true;
    this.log = el('ol', { part: 'log', class: 'log', 'aria-live': 'polite', 'aria-label': 'Messages' });
    const form = el('form', { part: 'form' });
    const label = el('label', { class: 'visually-hidden', for: 'input' }, 'Message');
    this.input = el('input', { part: 'input', id: 'input', type: 'text', autocomplete: 'off' });
    this.sendButton = el('button', { part: 'send-button', class: 'send', type: 'submit' }, 'Send');
    this.stopButton = el('button', { part: 'stop-button', class: 'stop', type: 'button' }, 'Stop');
    form.append(label, this.input, this.sendButton, this.stopButton);
    container.append(header, this.progress, this.note, this.log, form);
    this.root.append(style, container);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.input.value;
      this.input.value = '';
      void this.send(text);
    });
    this.stopButton.addEventListener('click', () => this.stop());
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.stop();
    });
    // No attributes here: document.createElement() rejects a constructor that adds any.
    this.stopButton.disabled = true;
  }

  connectedCallback(): void {
    if (!this.hasAttribute('state')) this.setState('idle');
    this.input.placeholder = this.getAttribute('placeholder') ?? 'Ask something…';
    if (!this.hasAttribute('lazy')) void this.ensureModel().catch(() => {});
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (name === 'placeholder') this.input.placeholder = value ?? 'Ask something…';
    if (name === 'model' && old !== value && this.isConnected && !this.given) {
      this.loading = undefined;
      if (!this.hasAttribute('lazy')) void this.ensureModel().catch(() => {});
    }
  }

  /** An engine the page already made (createEngine); it replaces the model attribute. */
  get engine(): GenerationEngine | undefined {
    return this.given;
  }

  set engine(engine: GenerationEngine | undefined) {
    this.given = engine;
    this.loading = undefined;
    if (engine && this.isConnected) void this.ensureModel().catch(() => {});
  }

  get state(): SkipDecodeChatState {
    return (this.getAttribute('state') as SkipDecodeChatState) ?? 'idle';
  }

  /** Sends a user message and resolves when the reply is complete (or stopped, or failed). */
  async send(text: string): Promise<void> {
    const message = text.trim();
    if (!message || this.running) return;
    let engine: GenerationEngine;
    try {
      engine = await this.ensureModel();
    } catch {
      return;
    }
    this.turns.push({ role: 'user', text: message });
    this.addMessage('user', message);
    const bubble = this.addMessage('assistant', '');
    const body = bubble.firstChild as Text;
    const stats = el('small', { part: 'stats', class: 'stats' });
    const maxNewTokens = this.intAttr('max-new-tokens', 32);
    const info = engine.info;
    this.running = new AbortController();
    this.setState('generating');
    let reply = '';
    let tokens = 0;
    try {
      // The model's suggested sampling (generation_config.json) when it has one; the attribute wins.
      const suggested = info.sampling ?? COMPONENT_SAMPLING;
      const temperature = this.numAttr('temperature', suggested.temperature ?? 0.7);
      const stream = engine.stream({
        ...replyRequest(info, this.turns, Math.max(64, info.maxPositions - maxNewTokens - 8)),
        maxNewTokens,
        schedule: this.schedule(info.layers, maxNewTokens),
        sampling: temperature > 0 ? { ...suggested, temperature } : undefined,
        exact: this.exact(),
        signal: this.running.signal,
      });
      for await (const chunk of stream) {
        const token = chunk.tokens[0];
        if (token === null) continue;
        tokens++;
        reply += chunk.deltas[0];
        body.data = reply;
        this.fire<SkipDecodeTokenDetail>('token', {
          text: chunk.deltas[0],
          token,
          step: chunk.step,
          layers: chunk.layers,
        });
        this.log.scrollTop = this.log.scrollHeight;
      }
      const out = await stream.result;
      body.data = out.texts[0] || '…';
      this.finish(stats, bubble, this.doneDetail(out));
    } catch (e) {
      const p = describeProblem(e);
      if (p.kind !== 'aborted') {
        bubble.remove();
        if (p.kind === 'device-lost') {
          // The shared engine is dead for every element: drop it so the next message loads afresh.
          this.loading = undefined;
          if (this.spec) void forget(this.spec);
        }
        this.fail(p.kind, p.title, p.detail);
        return;
      }
      // The engine's output up to the stop, with its metrics; absent when it stopped before starting.
      const partial = (e as { partial?: GenerateOutput }).partial;
      if (partial) {
        reply = partial.texts[0];
        body.data = reply;
      }
      const detail: SkipDecodeDoneDetail = partial
        ? this.doneDetail(partial)
        : {
            text: reply,
            finishReason: 'stopped',
            tokens,
            tokensPerSecond: 0,
            meanLayers: info.layers,
            theoreticalSpeedup: 1,
            schedule: '',
          };
      this.finish(stats, bubble, { ...detail, finishReason: 'stopped' });
    } finally {
      if (reply.trim()) this.turns.push({ role: 'assistant', text: reply });
      this.running = undefined;
    }
  }

  /** Stops the reply being generated, keeping what has arrived. */
  stop(): void {
    this.running?.abort();
  }

  /** Forgets the conversation (the model stays loaded). */
  clear(): void {
    this.stop();
    this.turns = [];
    this.log.replaceChildren();
  }

  private doneDetail(out: GenerateOutput): SkipDecodeDoneDetail {
    return {
      text: out.texts[0],
      finishReason: out.finishReasons[0],
      tokens: out.tokens[0].length,
      tokensPerSecond: out.metrics.decodeTokensPerSecond,
      meanLayers: out.metrics.meanLayers,
      theoreticalSpeedup: out.metrics.theoreticalSpeedup,
      schedule: out.schedule,
      ...(out.metrics.speculative ? { acceptanceRate: out.metrics.speculative.acceptanceRate } : {}),
    };
  }

  /** The `exact` attribute: absent, off; present, on, with a number value as the draft length. */
  private exact(): { draftTokens?: number } | undefined {
    const value = this.getAttribute('exact');
    if (value === null) return undefined;
    return value.trim() === '' ? {} : { draftTokens: Number(value) };
  }

  private finish(stats: HTMLElement, bubble: HTMLElement, d: SkipDecodeDoneDetail): void {
    const rate = Number.isFinite(d.tokensPerSecond) ? d.tokensPerSecond.toFixed(1) : '—';
    stats.textContent =
      `${d.tokens} tokens · ${rate} tok/s · ${d.meanLayers.toFixed(1)} layers · ` +
      `${d.theoreticalSpeedup.toFixed(2)}× fewer` +
      (d.acceptanceRate === undefined ? '' : ` · exact, ${(d.acceptanceRate * 100).toFixed(0)}% drafts accepted`) +
      (d.finishReason === 'stopped' ? ' · stopped' : '');
    bubble.append(stats);
    this.setState('ready');
    this.fire<SkipDecodeDoneDetail>('done', d);
  }

  private schedule(layers: number, maxNewTokens: number): Schedule {
    const value = (this.getAttribute('schedule') ?? 'full').trim();
    const preset = PRESETS.find((p) => p.id === value);
    return preset ? presetSchedule(preset, layers, Math.max(1, maxNewTokens - 1)) : parseSchedule(value);
  }

  private ensureModel(): Promise<GenerationEngine> {
    const wanted = this.given ? '(engine)' : (this.getAttribute('model') ?? '');
    if (this.loading && this.loadedFor === wanted) return this.loading;
    this.loadedFor = wanted;
    const load = this.load(wanted);
    this.loading = load;
    load.catch(() => {
      if (this.loading === load) this.loading = undefined;
    });
    return load;
  }

  private async load(wanted: string): Promise<GenerationEngine> {
    this.setState('loading');
    try {
      let engine: GenerationEngine;
      let label: string;
      if (this.given) {
        engine = this.given;
        label = engine.info.source;
      } else {
        const choice = await (this.constructor as typeof SkipDecodeChatElement).resolveModel(wanted);
        if (!choice.spec) throw new Error('set the model attribute to a hub id (e.g. facebook/opt-125m) or a URL');
        label = choice.label;
        this.spec = choice.spec;
        this.titleEl.textContent = label;
        this.note.hidden = !choice.random;
        this.note.textContent = 'Random-weight demo model: replies are noise.';
        this.progress.hidden = false;
        this.progress.removeAttribute('value');
        engine = await sharedModel(choice.spec, (p) => {
          if (p.totalBytes) {
            this.progress.max = p.totalBytes;
            this.progress.value = p.loadedBytes;
            this.statusEl.textContent = `${formatBytes(p.loadedBytes)} / ${formatBytes(p.totalBytes)}`;
          }
        });
      }
      if (this.loadedFor !== wanted) return engine;
      this.progress.hidden = true;
      this.titleEl.textContent = label;
      this.setState('ready');
      this.fire<SkipDecodeReadyDetail>('ready', { model: label, info: engine.info });
      return engine;
    } catch (e) {
      this.progress.hidden = true;
      const p = describeProblem(e);
      this.fail(p.kind, p.title, p.detail);
      throw e;
    }
  }

  private fail(kind: ProblemKind, title: string, message: string): void {
    const item = this.addMessage('assistant', `${title}: ${message}`);
    item.classList.add('error');
    item.setAttribute('role', 'alert');
    this.setState('error');
    this.fire<SkipDecodeErrorDetail>('error', { kind, title, message });
  }

  private addMessage(role: Turn['role'], text: string): HTMLLIElement {
    const li = el('li', { part: `message ${role}`, class: `message ${role}` });
    li.append(document.createTextNode(text));
    this.log.append(li);
    this.log.scrollTop = this.log.scrollHeight;
    return li;
  }

  private setState(state: SkipDecodeChatState): void {
    this.setAttribute('state', state);
    const labels: Record<SkipDecodeChatState, string> = {
      idle: '',
      loading: 'Loading…',
      ready: 'Ready',
      generating: 'Writing…',
      error: 'Error',
    };
    if (state !== 'loading' || !this.statusEl.textContent) this.statusEl.textContent = labels[state];
    const busy = state === 'generating';
    this.sendButton.disabled = busy || state === 'loading';
    this.stopButton.disabled = !busy;
  }

  private fire<T>(type: string, detail: T): void {
    this.dispatchEvent(new CustomEvent<T>(type, { detail, bubbles: true, composed: true }));
  }

  private intAttr(name: string, fallback: number): number {
    const v = Math.round(Number(this.getAttribute(name)));
    return Number.isFinite(v) && v >= 1 ? v : fallback;
  }

  private numAttr(name: string, fallback: number): number {
    const raw = this.getAttribute(name);
    const v = raw === null || raw.trim() === '' ? NaN : Number(raw);
    return Number.isFinite(v) && v >= 0 ? v : fallback;
  }
}

/** Registers the element (once) under `tag`, with `options.resolveModel` reading its model attributes. */
export function defineSkipDecodeChat(tag = 'skipdecode-chat', options: DefineSkipDecodeChatOptions = {}): void {
  if (customElements.get(tag)) return;
  const custom = options.resolveModel;
  customElements.define(tag, custom ? withResolver(custom) : SkipDecodeChatElement);
}

function withResolver(resolve: SkipDecodeModelResolver): typeof SkipDecodeChatElement {
  return class extends SkipDecodeChatElement {
    static override resolveModel = resolve;
  };
}

declare global {
  interface HTMLElementTagNameMap {
    'skipdecode-chat': SkipDecodeChatElement;
  }
}
