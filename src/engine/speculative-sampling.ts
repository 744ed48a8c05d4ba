/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023), the rule that makes exact mode's
 * sampled output the full model's in distribution. For each drafted token x, drawn from the draft's
 * distribution q, with the verifier's distribution p at the same position (both after the same
 * sampling transforms): accept x with probability min(1, p(x) / q(x)); at the first rejection draw
 * from normalise(max(0, p - q)) and stop. When all K drafts are accepted, the verifier's next row
 * gives a bonus token drawn from p. Every token it emits is distributed as p given its prefix.
 *
 * Seeding: each sequence owns one SplitMix64 stream (seed, its index in the request), separate from
 * plain sampling's, from which drafting, acceptance and resampling draw in a fixed order; a seeded
 * request is therefore reproducible, though not token-for-token equal to plain sampling's draws.
 */
import { streamRng, type SplitMix64 } from './rng.ts';
import { applyRepetitionPenalty, argmax, checkLogitsRow, topKIndices, type SamplingOptions } from './sampling.ts';

/**
 * How exact mode's verifier judged an emitted token: a draft it agreed with, its own token at the
 * first disagreement, its bonus token after all K drafts were accepted, or a token no draft
 * proposed (the prompt's forward, or a cycle that drafted nothing at the token limit).
 */
export type TokenVerdict = 'accepted' | 'corrected' | 'bonus' | 'full';

/** Probabilities over the vocabulary, summing to 1. */
export type Distribution = Float64Array;

/** Whether a draft whose probability is `q` under the draft and `p` under the verifier is kept, given a uniform `u`. */
export type AcceptRule = (p: number, q: number, u: number) => boolean;

/** The rule: accept with probability min(1, p / q). */
export const acceptDraft: AcceptRule = (p, q, u) => u < Math.min(1, p / q);

/**
 * The distribution plain sampling draws from (src/engine/sampling.ts, Hugging Face's order):
 * repetition penalty over `history`, temperature, top-k, top-p (the smallest most-likely set whose
 * mass reaches topP, ties to the lower index), normalised. Temperature 0 (greedy) is the argmax's point mass.
 */
export function samplingDistribution(
  logits: Float32Array,
  o: SamplingOptions,
  history: ArrayLike<number>,
): Distribution {
  checkLogitsRow(logits);
  let row = logits;
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1 && history.length > 0) {
    row = Float32Array.from(logits);
    applyRepetitionPenalty(row, history, penalty);
  }
  const V = row.length;
  const w = new Float64Array(V);
  const topK = o.topK ?? 0;
  const ranked = topK > 0 && topK < V ? topKIndices(row, topK) : null;
  const best = ranked ? ranked[0] : argmax(row);
  const invT = 1 / (o.temperature ?? 0);
  if (!Number.isFinite(invT)) {
    w[best] = 1;
    return w;
  }
  const m = row[best];
  const candidates = ranked ?? [];
  if (ranked) for (const i of ranked) w[i] = Math.exp((row[i] - m) * invT);
  else {
    for (let i = 0; i < V; i++) {
      if (row[i] > -Infinity) {
        w[i] = Math.exp((row[i] - m) * invT);
        if (w[i] > 0) candidates.push(i);
      }
    }
  }
  const topP = o.topP ?? 1;
  if (topP < 1) {
    const order = ranked ?? candidates.sort((a, b) => w[b] - w[a] || a - b);
    let total = 0;
    for (const i of order) total += w[i];
    let cum = 0;
    let n = 0;
    while (n < order.length && (n === 0 || cum < topP * total)) cum += w[order[n++]];
    for (let j = n; j < order.length; j++) w[order[j]] = 0;
  }
  return normalise(w);
}

function normalise(w: Float64Array): Distribution {
  let total = 0;
  for (let i = 0; i < w.length; i++) total += w[i];
  for (let i = 0; i < w.length; i++) w[i] /= total;
  return w;
}

/** Inverse-CDF draw from `d` with a uniform `u`; rounding that leaves `u` unreached falls back to the last token with mass. */
export function drawToken(d: Distribution, u: number): number {
  let cum = 0;
  let last = -1;
  for (let i = 0; i < d.length; i++) {
    if (d[i] === 0) continue;
    cum += d[i];
    last = i;
    if (u < cum) return i;
  }
  return last;
}

/** normalise(max(0, p - q)); p itself when nothing is left (p <= q everywhere only happens when p = q). */
export function residual(p: Distribution, q: Distribution): Distribution {
  const r = new Float64Array(p.length);
  let total = 0;
  for (let i = 0; i < p.length; i++) total += r[i] = Math.max(0, p[i] - q[i]);
  return total > 0 ? normalise(r) : p;
}

/** What one sequence's verification gave: the tokens to emit (accepted drafts, then one more) and how many drafts were kept. */
export interface Verdict {
  tokens: number[];
  accepted: number;
}

/** One sequence's random stream for drafting, acceptance and resampling. */
export class SpeculativeRng {
  private readonly rng: SplitMix64;

  constructor(seed: number, streamId: number) {
    // A stream id apart from plain sampling's (seed, b), so the two modes never share draws.
    this.rng = streamRng(seed, streamId + 0x5eed0000);
  }

  next(): number {
    return this.rng.nextFloat();
  }
}

/**
 * Verifies `drafts` (K tokens drawn from `q[0..K)`) against the verifier's distributions `p(0..K)`
 * (p(K) is the row after the last draft; each is asked for only when needed). Draws one uniform
 * per verified draft and one for the final token.
 */
export function verifySampled(
  drafts: readonly number[],
  q: readonly Distribution[],
  p: (i: number) => Distribution,
  rng: SpeculativeRng,
  rule: AcceptRule = acceptDraft,
): Verdict {
  const tokens: number[] = [];
  for (let i = 0; i < drafts.length; i++) {
    const x = drafts[i];
    const pi = p(i);
    if (rule(pi[x], q[i][x], rng.next())) {
      tokens.push(x);
      continue;
    }
    tokens.push(drawToken(residual(pi, q[i]), rng.next()));
    return { tokens, accepted: i };
  }
  tokens.push(drawToken(p(drafts.length), rng.next()));
  return { tokens, accepted: drafts.length };
}

/** Greedy verification: keep drafts while they equal the verifier's choice, then emit the verifier's token. */
export function verifyGreedy(drafts: readonly number[], choices: readonly number[]): Verdict {
  const tokens: number[] = [];
  for (let i = 0; i < drafts.length; i++) {
    tokens.push(choices[i]);
    if (choices[i] !== drafts[i]) return { tokens, accepted: i };
  }
  tokens.push(choices[drafts.length]);
  return { tokens, accepted: drafts.length };
}
