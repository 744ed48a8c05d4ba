/**
 * Positions x layers, run or skipped, drawn as the batch decodes. SVG rather than canvas so the
 * cells stay crisp at any zoom and tests can count them; a 64 x 24 grid is about 1,500 rects.
 */
const NS = 'http://www.w3.org/2000/svg';
const CELL = 10;
const GAP = 1;
const LEFT = 34;
const BOTTOM = 22;
const TOP = 8; // room for exact mode's verdict strip above the top layer

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export class Heatmap {
  readonly element: SVGSVGElement;
  private readonly cells: SVGRectElement[][] = [];
  private run = 0;
  private skipped = 0;
  private readonly verdicts: Record<string, number> = {};

  /** `columns` = 1 (the prompt) + decode steps. Layer L-1 is drawn at the top, as in the stack. */
  constructor(
    private readonly layers: number,
    private readonly columns: number,
    label: string,
  ) {
    const w = LEFT + columns * CELL + 4;
    const h = TOP + layers * CELL + BOTTOM;
    // Natural size at 1.6 px per unit (CSS caps the width): a short run stays small, not blown up.
    this.element = svg('svg', {
      viewBox: `0 0 ${w} ${h}`,
      width: Math.round(w * 1.6),
      height: Math.round(h * 1.6),
      class: 'heatmap',
      role: 'img',
      'aria-label': label,
    });
    const title = svg('title', {});
    title.textContent = label;
    this.element.append(title);
    for (let l = 0; l < layers; l++) {
      const y = TOP + (layers - 1 - l) * CELL;
      const row: SVGRectElement[] = [];
      for (let c = 0; c < columns; c++) {
        const rect = svg('rect', {
          x: LEFT + c * CELL,
          y,
          width: CELL - GAP,
          height: CELL - GAP,
          class: 'cell pending',
        });
        row.push(rect);
        this.element.append(rect);
      }
      this.cells.push(row);
      // Label every layer on shallow models, every fourth on deep ones, always the top and bottom.
      if (layers <= 12 || l % 4 === 0 || l === layers - 1) {
        const t = svg('text', { x: LEFT - 4, y: y + CELL - 2, class: 'axis', 'text-anchor': 'end' });
        t.textContent = String(l);
        this.element.append(t);
      }
    }
    const tickEvery = columns <= 16 ? 1 : columns <= 40 ? 5 : 10;
    for (let c = 0; c < columns; c += tickEvery) {
      const t = svg('text', {
        x: LEFT + c * CELL + (CELL - GAP) / 2,
        y: TOP + layers * CELL + 10,
        class: 'axis',
        'text-anchor': 'middle',
      });
      t.textContent = c === 0 ? 'P' : String(c);
      this.element.append(t);
    }
    const xl = svg('text', { x: LEFT, y: h - 2, class: 'axis-title' });
    xl.textContent = 'position →';
    const yl = svg('text', {
      x: 8,
      y: TOP + (layers * CELL) / 2,
      class: 'axis-title',
      transform: `rotate(-90 8 ${TOP + (layers * CELL) / 2})`,
      'text-anchor': 'middle',
    });
    yl.textContent = 'layer';
    this.element.append(xl, yl);
    this.sync();
  }

  /** Marks column `step` (0 = the prompt's forward) with the layers that step ran. */
  fill(step: number, layersRun: readonly number[]): void {
    if (step >= this.columns) return;
    const ran = new Set(layersRun);
    for (let l = 0; l < this.layers; l++) {
      const cell = this.cells[l][step];
      if (!cell.classList.contains('pending')) continue;
      const did = ran.has(l);
      cell.setAttribute('class', did ? 'cell run' : 'cell skip');
      if (did) this.run++;
      else this.skipped++;
    }
    this.sync();
  }

  /**
   * Exact mode: a strip above column `step` saying how the full-depth verifier judged that token
   * (accepted draft, corrected, bonus, or drafted by nothing).
   */
  mark(step: number, verdict: string): void {
    if (step >= this.columns) return;
    const strip = svg('rect', {
      x: LEFT + step * CELL,
      y: 1,
      width: CELL - GAP,
      height: 5,
      class: `verdict ${verdict}`,
    });
    const title = svg('title', {});
    title.textContent = `token ${step}: ${verdict}`;
    strip.append(title);
    this.element.append(strip);
    this.verdicts[verdict] = (this.verdicts[verdict] ?? 0) + 1;
    this.sync();
  }

  private sync(): void {
    for (const [k, n] of Object.entries(this.verdicts)) this.element.dataset[k] = String(n);
    this.element.dataset.run = String(this.run);
    this.element.dataset.skipped = String(this.skipped);
  }
}
