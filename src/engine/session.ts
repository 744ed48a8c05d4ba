import type { Gpu } from '../gpu/context.ts';
import { STEP_UNIFORM_BYTES } from '../gpu/kernel.ts';
import { DeviceLimitError } from '../errors.ts';
import type { RunnerBuffers } from '../models/architecture.ts';
import {
  attentionWorkgroupBytes,
  checkKvDType,
  kvCacheBytes,
  MAX_HEAD_DIM,
  type KvCache,
  type KvDType,
} from '../ops/attention.ts';
import { f32ToF16Bits } from '../model/dtype.ts';
import { sampleScratchWidth, seenWords } from '../ops/sample.ts';
import type { GpuModel } from './model.ts';

/** What a session is sized for; a request that fits reuses it, one that does not gets a new one. */
export interface SessionShape {
  batch: number;
  /** Longest prompt (after left padding) the prefill buffers hold. */
  promptCapacity: number;
  /** Positions per sequence in the KV cache: prompt + generated tokens. */
  maxSeq: number;
  /**
   * Rows per sequence the head can run on (default 1, each sequence's newest position). Exact mode's
   * verifier asks for K + 1: the logits of every drafted position come back from one forward.
   */
  headRows?: number;
  /** KV cache storage; default f32. */
  kvDtype?: KvDType;
}

/** One buffer a session will create, and what its size scales with (to say what would fit). */
export interface BufferSpec {
  label: string;
  bytes: number;
  usage: number;
  /** Bound to a kernel, so it must fit maxStorageBufferBindingSize (staging buffers only maxBufferSize). */
  bound: boolean;
  /** The size is `per` bytes times a count of `unit`. */
  per: number;
  unit: 'token rows (batch x prompt length)' | 'sequences' | 'cached positions (batch x positions)' | 'bytes';
}

/**
 * Every buffer of a session, in creation order; nothing is created here. The runner's own buffers
 * come first, then the architecture's activations (labelled by their names), the staging buffers
 * and each layer's KV cache. Row counts: `rows` = batch * promptCapacity covers both prefill (all
 * prompt tokens) and decode (one token per sequence).
 */
export function sessionBufferSpecs(model: GpuModel, shape: SessionShape): BufferSpec[] {
  const c = model.config;
  const { batch, promptCapacity, maxSeq } = shape;
  const rows = batch * promptCapacity;
  const headRows = shape.headRows ?? 1;
  const specs: BufferSpec[] = [];
  // Read here, not at module load: in Node the WebGPU globals exist only once a device was created.
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const READ = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
  const rowsOf = (label: string, width: number) =>
    specs.push({
      label,
      bytes: rows * width * 4,
      usage: STORAGE,
      bound: true,
      per: width * 4,
      unit: 'token rows (batch x prompt length)',
    });
  const seqsOf = (label: string, width: number, usage = STORAGE, bound = true, perSeq = 1) =>
    specs.push({ label, bytes: batch * perSeq * width * 4, usage, bound, per: perSeq * width * 4, unit: 'sequences' });
  // The head's buffers: one row per sequence, or headRows of them for exact mode's verifier.
  const headOf = (label: string, width: number, usage = STORAGE, bound = true) =>
    seqsOf(label, width, usage, bound, headRows);
  specs.push({
    label: 'step',
    bytes: STEP_UNIFORM_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    bound: false,
    per: 1,
    unit: 'bytes',
  });
  rowsOf('ids', 1);
  rowsOf('positions', 1);
  seqsOf('mask', maxSeq);
  rowsOf('hidden', c.hidden_size);
  headOf('last', c.hidden_size);
  headOf('logits', c.vocab_size);
  headOf('next_ids', 1);
  // Exact mode's drafted ids, [batch][headRows] u32: the verifier's input, gathered on the GPU.
  if (headRows > 1) headOf('draft_ids', 1);
  // The GPU sampler draws one id per sequence, from the head's first `batch` rows (decode steps).
  seqsOf('sample_draws', 1);
  seqsOf('sample_seen', seenWords(c.vocab_size));
  seqsOf('sample_scratch', sampleScratchWidth(c.vocab_size));
  for (const a of model.activations()) {
    if (a.rows === 'tokens') rowsOf(a.name, a.width);
    else headOf(a.name, a.width);
  }
  headOf('read_ids[0]', 1, READ, false);
  headOf('read_ids[1]', 1, READ, false);
  headOf('read_logits', c.vocab_size, READ, false);
  const { kvHeads, headDim } = model.kvCache;
  const kvDtype = shape.kvDtype ?? 'f32';
  const kv = kvCacheBytes(batch, kvHeads, headDim, maxSeq, kvDtype);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    for (const kind of ['k', 'v']) {
      specs.push({
        label: `layers.${i}.kv.${kind}`,
        bytes: kv,
        usage: STORAGE,
        bound: true,
        per: kvCacheBytes(1, kvHeads, headDim, 1, kvDtype),
        unit: 'cached positions (batch x positions)',
      });
    }
  }
  return specs;
}

/**
 * Refuses a session the device cannot run, before anything is allocated: each buffer against the
 * binding and buffer limits (naming the limit and the most that fits), and attention's workgroup memory.
 */
export function checkSessionFits(gpu: Gpu, model: GpuModel, shape: SessionShape, specs: BufferSpec[]): void {
  const l = gpu.limits;
  const request = `batch ${shape.batch} x prompt ${shape.promptCapacity} (${shape.maxSeq} cached positions)`;
  const { headDim } = model.kvCache;
  checkKvDType(shape.kvDtype ?? 'f32', headDim);
  if (headDim > MAX_HEAD_DIM) {
    throw new DeviceLimitError(`head_dim ${headDim} exceeds the attention kernel's ${MAX_HEAD_DIM}`);
  }
  const scratch = attentionWorkgroupBytes(shape.maxSeq);
  if (scratch > l.maxComputeWorkgroupStorageSize) {
    const most = Math.floor(l.maxComputeWorkgroupStorageSize / 4) - (MAX_HEAD_DIM + 64);
    throw new DeviceLimitError(
      `${request}: attention over ${shape.maxSeq} positions needs ${scratch} bytes of workgroup memory, over ` +
        `this device's maxComputeWorkgroupStorageSize of ${l.maxComputeWorkgroupStorageSize}; at most ${most} ` +
        `positions (prompt + new tokens) fit`,
    );
  }
  const limitOf = (s: BufferSpec): [number, string] =>
    s.bound && l.maxStorageBufferBindingSize <= l.maxBufferSize
      ? [l.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize']
      : [l.maxBufferSize, 'maxBufferSize'];
  const over = specs.find((s) => s.bytes > limitOf(s)[0]);
  if (!over) return;
  const [limit, name] = limitOf(over);
  // What fits is set by the tightest buffer that scales the same way, not only the first one over.
  const most = Math.min(...specs.filter((s) => s.unit === over.unit).map((s) => Math.floor(limitOf(s)[0] / s.per)));
  const per =
    over.unit === 'token rows (batch x prompt length)'
      ? ` (batch ${Math.floor(most / shape.promptCapacity)} at this prompt length)`
      : over.unit === 'cached positions (batch x positions)'
        ? ` (batch ${Math.floor(most / shape.maxSeq)} at ${shape.maxSeq} positions)`
        : '';
  const kv = over.label.includes('.kv.');
  const what = kv ? `the KV cache '${over.label}'` : `the '${over.label}' buffer`;
  const f16 = kv && (shape.kvDtype ?? 'f32') === 'f32' ? ", or kvCache: 'f16' (half the bytes)" : '';
  throw new DeviceLimitError(
    `${request}: ${what} needs ${over.bytes} bytes, over this device's ${name} of ${limit}; at most ` +
      `${most} ${over.unit} fit${per}: use a smaller batch, a shorter prompt or fewer new tokens${f16}`,
  );
}

/**
 * Every buffer a generation needs, allocated once up front (llama2.c's `malloc_run_state`):
 * a step only writes small uniforms and ids, binds nothing new, and reads back once.
 * Allocation is all-or-nothing: every size is checked against the device before the first buffer
 * is created, and a failure part-way destroys what was made.
 */
export class SessionBuffers implements RunnerBuffers {
  readonly step: GPUBuffer; // Step uniform { batch, tokens, past, max_seq }
  readonly ids: GPUBuffer; // [rows] u32, token ids of this step
  readonly positions: GPUBuffer; // [rows] u32, position ids (GpuModel.positionIds)
  readonly mask: GPUBuffer; // [batch][maxSeq] u32, 1 = real token, 0 = left padding
  readonly hidden: GPUBuffer; // [rows][hidden] f32, the residual stream
  readonly last: GPUBuffer; // [batch * headRows][hidden] f32, each sequence's newest position(s)
  readonly logits: GPUBuffer; // [batch * headRows][vocab] f32
  readonly nextIds: GPUBuffer; // [batch * headRows] u32, greedy choice (or the GPU sampler's)
  readonly draftIds?: GPUBuffer; // [batch][headRows] u32, exact mode only (headRows > 1)
  readonly sampleDraws: GPUBuffer; // [batch] f32, this step's uniform number per sequence
  readonly sampleSeen: GPUBuffer; // [batch][ceil(vocab / 32)] u32, ids each sequence has seen
  readonly sampleScratch: GPUBuffer; // [batch][2][vocab] f32, the sampler's working rows
  /** The architecture's activation buffers (GpuModel.activations), by name. */
  readonly activations: ReadonlyMap<string, GPUBuffer>;
  readonly caches: KvCache[]; // per layer: k, v [batch][kvHeads][maxSeq][headDim] in shape.kvDtype
  readonly readIds: [GPUBuffer, GPUBuffer]; // MAP_READ staging for nextIds (and draft ids), alternating by step
  readonly readLogits: GPUBuffer; // MAP_READ staging for logits, [batch * headRows][vocab]
  private readonly owned: GPUBuffer[];

  constructor(
    private readonly gpu: Gpu,
    model: GpuModel,
    readonly shape: SessionShape,
  ) {
    const specs = SessionBuffers.check(gpu, model, shape);
    const made = new Map<string, GPUBuffer>();
    try {
      for (const s of specs) {
        if (made.has(s.label)) throw new Error(`two session buffers are labelled "${s.label}"`);
        made.set(s.label, gpu.buffer(s.label, s.bytes, s.usage));
      }
    } catch (e) {
      for (const b of made.values()) gpu.destroy(b);
      throw e;
    }
    this.owned = [...made.values()];
    const take = (label: string) => {
      const b = made.get(label)!;
      made.delete(label);
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
    if (made.has('draft_ids')) this.draftIds = take('draft_ids');
    this.sampleDraws = take('sample_draws');
    this.sampleSeen = take('sample_seen');
    this.sampleScratch = take('sample_scratch');
    this.readIds = [take('read_ids[0]'), take('read_ids[1]')];
    this.readLogits = take('read_logits');
    this.caches = Array.from({ length: model.config.num_hidden_layers }, (_, i) => ({
      k: take(`layers.${i}.kv.k`),
      v: take(`layers.${i}.kv.v`),
      dtype: shape.kvDtype ?? 'f32',
    }));
    this.activations = made;
  }

  /** Throws DeviceLimitError when the device cannot hold a session of `shape`; else its buffer list. */
  static check(gpu: Gpu, model: GpuModel, shape: SessionShape): BufferSpec[] {
    const specs = sessionBufferSpecs(model, shape);
    checkSessionFits(gpu, model, shape, specs);
    return specs;
  }

  /** An activation buffer the architecture declared; a name it did not declare is a bug in its graph. */
  activation(name: string): GPUBuffer {
    const b = this.activations.get(name);
    if (!b)
      throw new Error(`the model's graph asks for activation "${name}", which its activations() does not declare`);
    return b;
  }

  fits(batch: number, promptLength: number, totalLength: number, headRows = 1): boolean {
    return (
      batch === this.shape.batch &&
      promptLength <= this.shape.promptCapacity &&
      totalLength <= this.shape.maxSeq &&
      headRows <= (this.shape.headRows ?? 1)
    );
  }

  /** Fills every KV cache entry with `value` (tests poison the cache with NaN), in the cache's format. */
  fillCaches(value: number): void {
    const half = f32ToF16Bits(value);
    for (const cache of this.caches) {
      for (const buf of [cache.k, cache.v]) {
        const words =
          cache.dtype === 'f16'
            ? new Uint32Array(buf.size / 4).fill((half | (half << 16)) >>> 0)
            : new Float32Array(buf.size / 4).fill(value);
        this.gpu.device.queue.writeBuffer(buf, 0, words);
      }
    }
  }

  dispose(): void {
    for (const b of this.owned) this.gpu.destroy(b);
    this.owned.length = 0;
  }
}
