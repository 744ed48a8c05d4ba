/** Sampling controls; empty fields fall back to the runtime's defaults. */
import type { SamplingOptions } from '../../index.ts';
import { h, numberField, numberValue } from '../shared/dom.ts';

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
      value: 0.8,
      name: 'temperature',
      hint: '0 is greedy',
    });
    const p = numberField('Top-p', { min: 0.01, max: 1, step: 0.01, value: 0.95, name: 'top-p', hint: '1 disables' });
    const k = numberField('Top-k', { min: 0, step: 1, value: 50, name: 'top-k', hint: '0 disables' });
    const r = numberField('Repetition penalty', {
      min: 0.5,
      max: 2,
      step: 0.05,
      value: 1.1,
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
