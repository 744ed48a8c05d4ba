/**
 * The public request and result shapes. Everything here is plain data (no classes, no functions
 * except the optional callbacks), so it crosses the worker boundary by structured clone.
 */
import type { SamplingOptions } from '../engine/sampling.ts';
import type { StopReason } from '../engine/stopping.ts';
import type { GenerationMetrics, SkipMetrics } from '../skip/metrics.ts';
import type { Schedule } from '../skip/schedule.ts';
import type { LoadProgress } from '../model/progress.ts';
import type { TokenVerdict } from '../engine/speculative-sampling.ts';
import type { SpeculativeMetrics } from '../skip/speculative-metrics.ts';

export type {
  SamplingOptions,
  StopReason,
  SkipMetrics,
  GenerationMetrics,
  Schedule,
  LoadProgress,
  TokenVerdict,
  SpeculativeMetrics,
};

/** A prompt as text (needs the model's tokenizer) or as token ids (BOS included). */
export type Prompt = string | number[];

export interface GenerateRequest {
  /** One prompt; give either this or `prompts`. */
  prompt?: Prompt;
  /** A batch, generated together (left-padded); give either this or `prompt`. */
  prompts?: Prompt[];
  /** Default 32. */
  maxNewTokens?: number;
  /** `"full"`, `"linear:max=12,min=4,warmup=2,span=32"`, `"table:..."`, or a Schedule object. Default full. */
  schedule?: string | Schedule;
  /** Absent or temperature 0: greedy. */
  sampling?: SamplingOptions;
  /** Texts that end a sequence; the output is cut before them. */
  stop?: string[];
  stopTokenIds?: number[];
  /** Default: the model's eos_token_id; null generates to the length limit. */
  eosTokenId?: number | null;
  /**
   * Exact mode: the schedule drafts K tokens (default 4, 1..8), one full-depth forward verifies
   * them, and the output is the full model's (identical tokens when greedy, the same distribution
   * when sampling). Needs a schedule that skips layers.
   */
  exact?: boolean | { draftTokens?: number };
  /** Keep the logits each token was picked from (`GenerateOutput.logits`); one larger readback per step. */
  returnLogits?: boolean;
  /**
   * Stops the request: waiting, it rejects with AbortError; running, the stream's last chunk gives
   * 'abort' to the sequences still running and the AbortError carries the output so far (`partial`).
   */
  signal?: AbortSignal;
}

/**
 * One decode step of a request. An aborted request's last chunk is for the step that did not run:
 * no tokens, no layers, 'abort' for the sequences still running and any text held back until then.
 */
export interface GenerateChunk {
  /** 0 for the prompt's forward, k + 1 for decode step k. */
  step: number;
  /** Layers this step's forward ran (all of them for the prompt). */
  layers: number[];
  /** Per sequence: the new token, or null once the sequence has finished. */
  tokens: (number | null)[];
  /** Per sequence: text added by this step ('' while text is held back or without a tokenizer). */
  deltas: string[];
  /** Per sequence: why it finished at this step, else null. */
  finishReasons: (StopReason | null)[];
  /** The request's metrics so far (the final chunk's are the output's). */
  metrics: GenerationMetrics;
  /** Exact mode: per sequence, how the verifier judged this token (null once finished). */
  verdicts?: (TokenVerdict | null)[];
}

export interface GenerateOutput {
  /** Per sequence: generated text (EOS/stop token dropped, cut before a stop string). */
  texts: string[];
  /** Per sequence: generated token ids, the finishing one included. */
  tokens: number[][];
  /** 'abort' (only in an AbortError's `partial`) for sequences still running when the signal fired. */
  finishReasons: StopReason[];
  /** Per sequence: the prompt's token ids. */
  promptTokens: number[][];
  /** Layer indices run by each decode step. */
  layersRun: number[][];
  /** The schedule's label, e.g. `linear:max=12,min=4,warmup=2,span=32`. */
  schedule: string;
  /** Computed by the engine; display these rather than recomputing them. */
  metrics: GenerationMetrics;
  /** With `returnLogits`: step i's logits, [batch * vocab], that generated token i was picked from. */
  logits?: Float32Array[];
  /** The seed used, when sampling. */
  seed?: number;
  /** Exact mode: verdicts[b][i] says how generated token i of sequence b was verified. */
  verdicts?: TokenVerdict[][];
  timing: {
    queuedMs: number;
    prefillMs: number;
    decodeMs: number;
    decodeTokensPerSecond: number;
    decodeTokens: number;
  };
}

/** What a loaded model is. */
export interface ModelInfo {
  /** The hub id, URL or folder it came from. */
  source: string;
  layers: number;
  hiddenSize: number;
  heads: number;
  vocabSize: number;
  maxPositions: number;
  hasTokenizer: boolean;
  /** The model's chat template and end-of-turn ids, when tokenizer_config.json has a chat_template. */
  chat?: ModelChatInfo;
  /** GPU bytes the weights occupy (measured: what the upload allocated). */
  gpuBytes: number;
  /** How the matrices are stored: as in the checkpoint, or quantized (at load or by `skipdecode quantize`). */
  weights: 'checkpoint' | 'int8' | 'q4';
  /** GPU bytes of the weights as stored (padded rows, scales, f32 vectors), from their shapes. */
  weightBytes: number;
  /**
   * With `weights: 'int8' | 'q4'` and the quantized-model cache on: this load read the cached quantized
   * copy (`hit`), quantized the checkpoint and stored the copy (`stored`), or could not store it.
   */
  quantizedCache?: 'hit' | 'stored' | 'not-stored';
  /** KV cache storage. */
  kvCache: 'f32' | 'f16';
  /** KV cache bytes per cached position of one sequence, keys and values of every layer. */
  kvBytesPerPosition: number;
  adapter: string;
  /** config.json says the model was fine-tuned for layer skipping (`skipdecode.fine_tuned`). */
  fineTunedForSkipping: boolean;
  /**
   * The model's suggested sampling, from its generation_config.json (`do_sample: true` with
   * temperature, top_p, top_k, repetition_penalty). Requests are never changed by it: pass it as a
   * request's `sampling` to use it (the pages start their controls from it).
   */
  sampling?: SamplingOptions;
}

/** A streamed generation: iterate for chunks; `result` settles with the whole output (or the error). */
export interface GenerateStream extends AsyncIterable<GenerateChunk> {
  readonly result: Promise<GenerateOutput>;
}

/** What both the in-process engine and the worker client offer. */
export interface GenerationEngine {
  readonly info: ModelInfo;
  stream(request: GenerateRequest): GenerateStream;
  generate(request: GenerateRequest): Promise<GenerateOutput>;
}

/** What `chat.completions.create` needs to turn messages into a prompt and stop at the end of a turn. */
export interface ModelChatInfo {
  /** tokenizer_config.json's chat_template (Jinja). */
  template: string;
  bosToken?: string;
  eosToken?: string;
  /** The tokenizer puts BOS before text itself, so a template's leading bos_token is left to it. */
  tokenizerAddsBos: boolean;
  /** config.json's eos ids and tokenizer_config.json's eos_token: a generated one ends the reply. */
  stopTokenIds: number[];
}
