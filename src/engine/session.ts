import type { Gpu } from '../gpu/context.ts';
import { STEP_UNIFORM_BYTES } from '../gpu/kernel.ts';
import type { KvCache } from '../ops/attention.ts';
import type { GpuModel } from './model.ts';

/** What a session is sized for; a request that fits reuses it, one that does not gets a new one. */
export interface SessionShape {
  batch: number;
  /** Longest prompt (after left padding) the prefill buffers hold. */
  promptCapacity: number;
  /** Positions per sequence in the KV cache: prompt + generated tokens. */
  maxSeq: number;
}

/**
 * Every buffer a generation needs, allocated once up front (llama2.c's `malloc_run_state`):
 * a step only writes small uniforms and ids, binds nothing new, and reads back once.
 * Row counts: `rows` = batch * promptCapacity covers both prefill (all prompt tokens) and decode
 * (one token per sequence).
 */
export class SessionBuffers {
  readonly step: GPUBuffer; // Step uniform { batch, tokens, past, max_seq }
  readonly ids: GPUBuffer; // [rows] u32, token ids of this step
  readonly positions: GPUBuffer; // [rows] u32, learned-position row (position id + 2)
  readonly mask: GPUBuffer; // [batch][maxSeq] u32, 1 = real token, 0 = left padding
  readonly embeddings?: GPUBuffer; // [rows][word_embed_proj_dim] f32, before project_in (350m only)
  readonly hidden: GPUBuffer; // [rows][hidden] f32, the residual stream
  readonly normed: GPUBuffer; // [rows][hidden] f32, a sublayer's normalised input
  readonly qkv: GPUBuffer; // [rows][3][heads][headDim] f32
  readonly attention: GPUBuffer; // [rows][heads][headDim] f32
  readonly ffn: GPUBuffer; // [rows][ffn_dim] f32
  readonly last: GPUBuffer; // [batch][hidden] f32, each sequence's newest position
  readonly lastNormed: GPUBuffer; // [batch][hidden] f32, after the final norm (pre-LN)
  readonly projected?: GPUBuffer; // [batch][word_embed_proj_dim] f32, after project_out (350m)
  readonly logits: GPUBuffer; // [batch][vocab] f32
  readonly nextIds: GPUBuffer; // [batch] u32, greedy choice
  readonly caches: KvCache[]; // per layer: k, v [batch][heads][maxSeq][headDim] f32
  readonly readIds: [GPUBuffer, GPUBuffer]; // MAP_READ staging for nextIds, alternating by step
  readonly readLogits: GPUBuffer; // MAP_READ staging for logits
  private readonly owned: GPUBuffer[] = [];

  constructor(
    private readonly gpu: Gpu,
    model: GpuModel,
    readonly shape: SessionShape,
    allocateCache: (layer: number) => KvCache,
  ) {
    const c = model.config;
    const rows = shape.batch * shape.promptCapacity;
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const f32 = (label: string, n: number) => this.own(gpu.buffer(label, n * 4, storage));
    this.step = this.own(gpu.buffer('step', STEP_UNIFORM_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST));
    this.ids = f32('ids', rows);
    this.positions = f32('positions', rows);
    this.mask = f32('mask', shape.batch * shape.maxSeq);
    if (model.projectIn) this.embeddings = f32('embeddings', rows * c.word_embed_proj_dim);
    this.hidden = f32('hidden', rows * c.hidden_size);
    this.normed = f32('normed', rows * c.hidden_size);
    this.qkv = f32('qkv', rows * 3 * c.hidden_size);
    this.attention = f32('attention', rows * c.hidden_size);
    this.ffn = f32('ffn', rows * c.ffn_dim);
    this.last = f32('last', shape.batch * c.hidden_size);
    this.lastNormed = f32('last_normed', shape.batch * c.hidden_size);
    if (model.projectOut) this.projected = f32('projected', shape.batch * c.word_embed_proj_dim);
    this.logits = f32('logits', shape.batch * c.vocab_size);
    this.nextIds = f32('next_ids', shape.batch);
    const read = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
    this.readIds = [0, 1].map((i) => this.own(gpu.buffer(`read_ids[${i}]`, shape.batch * 4, read))) as [
      GPUBuffer,
      GPUBuffer,
    ];
    this.readLogits = this.own(gpu.buffer('read_logits', shape.batch * c.vocab_size * 4, read));
    this.caches = model.layers.map((_, i) => {
      const cache = allocateCache(i);
      this.own(cache.k);
      this.own(cache.v);
      return cache;
    });
  }

  private own(b: GPUBuffer): GPUBuffer {
    this.owned.push(b);
    return b;
  }

  fits(batch: number, promptLength: number, totalLength: number): boolean {
    return batch === this.shape.batch && promptLength <= this.shape.promptCapacity && totalLength <= this.shape.maxSeq;
  }

  /** Fills every KV cache entry with `value` (tests poison the cache with NaN). */
  fillCaches(value: number): void {
    for (const cache of this.caches) {
      for (const buf of [cache.k, cache.v]) {
        this.gpu.device.queue.writeBuffer(buf, 0, new Float32Array(buf.size / 4).fill(value));
      }
    }
  }

  dispose(): void {
    for (const b of this.owned) this.gpu.destroy(b);
    this.owned.length = 0;
  }
}
