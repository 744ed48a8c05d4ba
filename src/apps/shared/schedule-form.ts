/**
 * Schedule presets plus the advanced linear parameters. A preset fills the parameters from the
 * model's depth and the reply length; editing a parameter makes the schedule "custom".
 */
import { ScheduleError, SkipPlan, type Schedule } from '../../index.ts';
import { fmt, h, numberField, numberValue, uniqueId } from './dom.ts';
import { PRESETS, predictedSpeedup, presetSchedule, scheduleLabel } from './presets.ts';

export class ScheduleForm {
  readonly element: HTMLFieldSetElement;
  private readonly radios: HTMLInputElement[] = [];
  private readonly inputs: Record<'max' | 'min' | 'warmup' | 'span', HTMLInputElement>;
  private readonly summary: HTMLElement;
  private readonly exactBox: HTMLInputElement;
  private readonly draftInput: HTMLInputElement;
  private layers = 12;
  private steps = 31;
  private custom = false;

  constructor(opts: { legend?: string; initial?: string; onChange?: () => void } = {}) {
    const name = uniqueId('preset');
    const options = PRESETS.map((p) => {
      const id = `${name}-${p.id}`;
      const radio = h('input', { type: 'radio', name, id, value: p.id, checked: p.id === (opts.initial ?? 'full') });
      this.radios.push(radio);
      return h('label', { for: id, class: 'chip' }, radio, p.label);
    });
    const max = numberField('Max layers', { min: 1, step: 1, name: 'max', hint: 'Layers at the first step' });
    const min = numberField('Min layers', { min: 1, step: 1, name: 'min', hint: 'Layers once decayed' });
    const warmup = numberField('Warm-up', { min: 0, step: 1, name: 'warmup', hint: 'Bottom layers always run' });
    const span = numberField('Span', { min: 1, step: 1, name: 'span', hint: 'Steps to decay over' });
    this.inputs = { max: max.input, min: min.input, warmup: warmup.input, span: span.input };
    this.summary = h('p', { class: 'schedule-summary', 'aria-live': 'polite' });
    // Exact mode: the schedule only drafts, full depth verifies; nothing to draft at full depth.
    const exactId = uniqueId('exact');
    this.exactBox = h('input', { type: 'checkbox', id: exactId, name: 'exact' });
    const draft = numberField('Draft tokens', { min: 1, step: 1, name: 'draft-tokens', hint: 'K, 1 to 8' });
    this.draftInput = draft.input;
    this.draftInput.max = '8';
    this.draftInput.value = '4';
    const exactRow = h(
      'div',
      { class: 'exact-row' },
      h('label', { for: exactId, class: 'chip' }, this.exactBox, 'Exact: the schedule only drafts, all layers verify'),
      draft.field,
    );
    this.element = h(
      'fieldset',
      { class: 'schedule-form' },
      h('legend', {}, opts.legend ?? 'Layer-skipping schedule'),
      h('div', { class: 'chips', role: 'radiogroup', 'aria-label': 'Schedule preset' }, ...options),
      h(
        'details',
        { class: 'advanced' },
        h('summary', {}, 'Advanced: linear schedule'),
        h('div', { class: 'grid4' }, max.field, min.field, warmup.field, span.field),
      ),
      exactRow,
      this.summary,
    );
    for (const input of [this.exactBox, this.draftInput]) input.addEventListener('change', () => opts.onChange?.());
    for (const r of this.radios) {
      r.addEventListener('change', () => {
        this.custom = false;
        this.fill();
        opts.onChange?.();
      });
    }
    for (const input of Object.values(this.inputs)) {
      input.addEventListener('input', () => {
        this.custom = true;
        this.summarise();
        opts.onChange?.();
      });
    }
    this.fill();
  }

  get presetId(): string {
    return this.custom ? 'custom' : (this.radios.find((r) => r.checked)?.value ?? 'full');
  }

  /** Re-derives the preset for a model depth and a reply length (decode steps = tokens - 1). */
  configure(layers: number, maxNewTokens: number): void {
    this.layers = Math.max(1, layers);
    this.steps = Math.max(1, maxNewTokens - 1);
    for (const i of Object.values(this.inputs)) i.max = String(this.layers);
    if (!this.custom) this.fill();
    else this.summarise();
  }

  select(presetId: string): void {
    const r = this.radios.find((x) => x.value === presetId);
    if (r) {
      r.checked = true;
      this.custom = false;
      this.fill();
    }
  }

  /**
   * Exact mode's request option when the box is ticked and the schedule skips (else undefined); the
   * engine checks K and names a bad one.
   */
  exact(): { draftTokens: number } | undefined {
    if (!this.exactBox.checked || this.presetId === 'full') return undefined;
    return { draftTokens: numberValue(this.draftInput) ?? NaN };
  }

  /** The schedule to send, or a ScheduleError naming the broken rule. */
  schedule(): Schedule {
    if (!this.custom) {
      const p = PRESETS.find((x) => x.id === this.presetId) ?? PRESETS[0];
      return presetSchedule(p, this.layers, this.steps);
    }
    const v = (k: keyof typeof this.inputs) => numberValue(this.inputs[k]);
    const s: Schedule = {
      kind: 'linear',
      max: v('max') ?? NaN,
      min: v('min') ?? NaN,
      warmup: v('warmup') ?? NaN,
      span: v('span') ?? NaN,
    };
    new SkipPlan(this.layers, s);
    return s;
  }

  private fill(): void {
    this.exactBox.disabled = this.presetId === 'full';
    const p = PRESETS.find((x) => x.id === this.presetId) ?? PRESETS[0];
    const s = presetSchedule(p, this.layers, this.steps);
    const lin = s.kind === 'linear' ? s : { max: this.layers, min: this.layers, warmup: 0, span: 1 };
    this.inputs.max.value = String(lin.max);
    this.inputs.min.value = String(lin.min);
    this.inputs.warmup.value = String(lin.warmup);
    this.inputs.span.value = String(lin.span);
    this.summarise();
  }

  private summarise(): void {
    try {
      const s = this.schedule();
      const x = predictedSpeedup(s, this.layers, this.steps);
      for (const i of Object.values(this.inputs)) i.removeAttribute('aria-invalid');
      this.summary.classList.remove('bad');
      this.summary.textContent =
        s.kind === 'full'
          ? `Every token runs all ${this.layers} layers.`
          : `${scheduleLabel(s)} · ${fmt(this.layers / x)} of ${this.layers} layers on average · about ${fmt(x)}× fewer layer runs over ${this.steps + 1} tokens`;
    } catch (e) {
      for (const i of Object.values(this.inputs)) i.setAttribute('aria-invalid', 'true');
      this.summary.classList.add('bad');
      this.summary.textContent = e instanceof ScheduleError ? e.message : String(e);
    }
  }
}
