import type { Gpu } from '../gpu/context.ts';
import { STEP_UNIFORM_BYTES } from '../gpu/kernel.ts';
import type { RunnerBuffers } from '../models/architecture.ts';
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

/** One buffer a session allocates. */
export interface BufferSpec {
  label: string;
  bytes: number;
  usage: number;
}

/**
 * Every buffer of a session but the KV caches, runner's first, then the architecture's activations
 * (labelled by their names). Row counts: `rows` = batch * promptCapacity covers both prefill (all
 * prompt tokens) and decode (one token per sequence).
 */
export function sessionBufferSpecs(model: GpuModel, shape: SessionShape): BufferSpec[] {
  const c = model.config;
  const rows = shape.batch * shape.promptCapacity;
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const READ = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
  const f32 = (label: string, n: number): BufferSpec => ({ label, bytes: n * 4, usage: STORAGE });
  return [
    { label: 'step', bytes: STEP_UNIFORM_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST },
    f32('ids', rows),
    f32('positions', rows),
    f32('mask', shape.batch * shape.maxSeq),
    f32('hidden', rows * c.hidden_size),
    f32('last', shape.batch * c.hidden_size),
    f32('logits', shape.batch * c.vocab_size),
    f32('next_ids', shape.batch),
    ...model.activations().map((a) => f32(a.name, (a.rows === 'tokens' ? rows : shape.batch) * a.width)),
    { label: 'read_ids[0]', bytes: shape.batch * 4, usage: READ },
    { label: 'read_ids[1]', bytes: shape.batch * 4, usage: READ },
    { label: 'read_logits', bytes: shape.batch * c.vocab_size * 4, usage: READ },
  ];
}

/**
 * Every buffer a generation needs, allocated once up front (llama2.c's `malloc_run_state`):
 * a step only writes small uniforms and ids, binds nothing new, and reads back once.
 */
export class SessionBuffers implements RunnerBuffers {
  readonly step: GPUBuffer; // Step uniform { batch, tokens, past, max_seq }
  readonly ids: GPUBuffer; // [rows] u32, token ids of this step
  readonly positions: GPUBuffer; // [rows] u32, position ids (GpuModel.positionIds)
  readonly mask: GPUBuffer; // [batch][maxSeq] u32, 1 = real token, 0 = left padding
  readonly hidden: GPUBuffer; // [rows][hidden] f32, the residual stream
  readonly last: GPUBuffer; // [batch][hidden] f32, each sequence's newest position
  readonly logits: GPUBuffer; // [batch][vocab] f32
  readonly nextIds: GPUBuffer; // [batch] u32, greedy choice
  /** The architecture's activation buffers (GpuModel.activations), by name. */
  readonly activations: ReadonlyMap<string, GPUBuffer>;
  readonly caches: KvCache[]; // per layer: k, v [batch][kvHeads][maxSeq][headDim] f32
  readonly readIds: [GPUBuffer, GPUBuffer]; // MAP_READ staging for nextIds, alternating by step
  readonly readLogits: GPUBuffer; // MAP_READ staging for logits
  private readonly owned: GPUBuffer[] = [];

  constructor(
    private readonly gpu: Gpu,
    model: GpuModel,
    readonly shape: SessionShape,
    allocateCache: (layer: number) => KvCache,
  ) {
    const buffers = new Map<string, GPUBuffer>();
    for (const spec of sessionBufferSpecs(model, shape)) {
      if (buffers.has(spec.label)) throw new Error(`two session buffers are labelled "${spec.label}"`);
      buffers.set(spec.label, this.own(gpu.buffer(spec.label, spec.bytes, spec.usage)));
    }
    const take = (label: string) => {
      const b = buffers.get(label)!;
      buffers.delete(label);
      return b;
    };
    this.step = take('step');
    this.ids = take('ids');
    this.positions = take('positions');
    this.mask = take('mask');
    this.hidden = take('hidden');
    this.last = take('last');
    this.logits = take('logits');
    this.nextIds = take('next_ids');
    this.readIds = [take('read_ids[0]'), take('read_ids[1]')];
    this.readLogits = take('read_logits');
    this.activations = buffers;
    this.caches = Array.from({ length: model.config.num_hidden_layers }, (_, i) => {
      const cache = allocateCache(i);
      this.own(cache.k);
      this.own(cache.v);
      return cache;
    });
  }

  /** An activation buffer the architecture declared; a name it did not declare is a bug in its graph. */
  activation(name: string): GPUBuffer {
    const b = this.activations.get(name);
    if (!b)
      throw new Error(`the model's graph asks for activation "${name}", which its activations() does not declare`);
    return b;
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
