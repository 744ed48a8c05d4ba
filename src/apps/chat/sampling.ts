/** Sampling controls; empty fields fall back to the runtime's defaults. */
import type { SamplingOptions } from '../../index.ts';
import { h, numberField, numberValue } from '../shared/dom.ts';
import { CHAT_SAMPLING } from '../shared/sampling-defaults.ts';

export class SamplingForm {
  readonly element: HTMLFieldSetElement;
  readonly maxNewTokens: HTMLInputElement;
  private readonly temperature: HTMLInputElement;
  private readonly topP: HTMLInputElement;
  private readonly topK: HTMLInputElement;
  private readonly repetition: HTMLInputElement;
  private readonly seed: HTMLInputElement;

  constructor(defaults: { maxNewTokens: number }, onChange: () => void) {
    const t = numberField('Temperature', {
      min: 0,
      max: 2,
      step: 0.05,
      value: CHAT_SAMPLING.temperature,
      name: 'temperature',
      hint: '0 is greedy',
    });
    const p = numberField('Top-p', {
      min: 0.01,
      max: 1,
      step: 0.01,
      value: CHAT_SAMPLING.topP,
      name: 'top-p',
      hint: '1 disables',
    });
    const k = numberField('Top-k', { min: 0, step: 1, value: CHAT_SAMPLING.topK, name: 'top-k', hint: '0 disables' });
    const r = numberField('Repetition penalty', {
      min: 0.5,
      max: 2,
      step: 0.05,
      value: CHAT_SAMPLING.repetitionPenalty,
      name: 'repetition-penalty',
      hint: '1 disables',
    });
    const s = numberField('Seed', { min: 0, step: 1, value: '', name: 'seed', hint: 'Empty: random' });
    const m = numberField('Max new tokens', {
      min: 1,
      max: 512,
      step: 1,
      value: defaults.maxNewTokens,
      name: 'max-new-tokens',
    });
    this.temperature = t.input;
    this.topP = p.input;
    this.topK = k.input;
    this.repetition = r.input;
    this.seed = s.input;
    this.maxNewTokens = m.input;
    this.element = h(
      'fieldset',
      { class: 'sampling-form' },
      h('legend', {}, 'Sampling'),
      h('div', { class: 'grid4' }, t.field, p.field, k.field, r.field, s.field, m.field),
    );
    this.element.addEventListener('input', onChange);
  }

  get tokens(): number {
    return Math.max(1, Math.round(numberValue(this.maxNewTokens) ?? 32));
  }

  set tokens(n: number) {
    this.maxNewTokens.value = String(n);
  }

  /** Starts the controls from a model's suggested sampling (ModelInfo.sampling), else the page's. */
  suggest(s: SamplingOptions | undefined): void {
    const v = s ?? CHAT_SAMPLING;
    this.temperature.value = String(v.temperature ?? 0);
    this.topP.value = String(v.topP ?? 1);
    this.topK.value = String(v.topK ?? 0);
    this.repetition.value = String(v.repetitionPenalty ?? 1);
  }

  options(): SamplingOptions {
    const seed = numberValue(this.seed);
    return {
      temperature: numberValue(this.temperature) ?? 0,
      topP: numberValue(this.topP),
      topK: numberValue(this.topK) === undefined ? undefined : Math.round(numberValue(this.topK)!),
      repetitionPenalty: numberValue(this.repetition),
      seed: seed === undefined ? undefined : Math.round(seed),
    };
  }
}
