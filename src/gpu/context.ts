import { DeviceLimitError, GpuError, NoAdapterError } from '../errors.ts';
import type { ShaderLoader } from './shaders.ts';
import { defaultKernelTuning, type GpuFeatures, type KernelTuning } from './tuning.ts';

/** Limits the kernels and the engine size themselves against; read from the adapter, never assumed. */
export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface GpuOptions {
  /**
   * Size everything as if the device allowed at most these (tests run the limit paths on small
   * models with them); a limit is only ever lowered, never raised past the device's own.
   */
  limits?: Partial<GpuLimits>;
  /**
   * Optional features to leave off even when the adapter has them (`{ subgroups: false }` gives a
   * device like one without them, e.g. Chromium's SwiftShader).
   */
  features?: { subgroups?: false };
  /** Override the kernel paths chosen from the adapter (benchmarks compare paths with it). */
  tuning?: Partial<KernelTuning>;
}

type ScopeFilter = 'validation' | 'out-of-memory' | 'internal';

const LIMIT_KEYS: (keyof GpuLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
];

/**
 * One device plus what every kernel needs from it: limits, shader source,
 * a pipeline cache keyed explicitly, and a count of the bytes allocated.
 */
export class Gpu {
  readonly device: GPUDevice;
  readonly adapterName: string;
  readonly limits: GpuLimits;
  /** Optional features this device has. */
  readonly features: GpuFeatures;
  /** The kernel paths ops take by default on this device (ops may be given their own). */
  readonly tuning: KernelTuning;
  readonly shaders: ShaderLoader;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly live = new Map<GPUBuffer, number>();
  /** Errors the device reported outside every error scope, oldest first, until taken. */
  private readonly uncaptured: GPUError[] = [];

  /**
   * The GPU object the device came from. Held so it lives as long as the device: Dawn's Node
   * bindings tear down the instance (and its threads) when it is garbage-collected, which
   * crashes every later await on the device.
   */
  private readonly instance: GPU;

  private constructor(
    instance: GPU,
    device: GPUDevice,
    adapterName: string,
    limits: GpuLimits,
    shaders: ShaderLoader,
    features: GpuFeatures,
    tuning: Partial<KernelTuning>,
  ) {
    this.instance = instance;
    this.device = device;
    this.adapterName = adapterName;
    this.limits = limits;
    this.shaders = shaders;
    this.features = features;
    this.tuning = { ...defaultKernelTuning(features, adapterName), ...tuning };
    device.addEventListener('uncapturederror', (e) => {
      e.preventDefault();
      this.uncaptured.push((e as GPUUncapturedErrorEvent).error);
    });
  }

  /** Requests an adapter and a device with the adapter's own limits. */
  static async create(
    gpu: GPU | undefined,
    shaders: ShaderLoader,
    hint?: string,
    options: GpuOptions = {},
  ): Promise<Gpu> {
    if (!gpu) throw new NoAdapterError(`WebGPU is not available in this environment.${hint ? ' ' + hint : ''}`);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new NoAdapterError(`No WebGPU adapter found.${hint ? ' ' + hint : ''}`);
    const requiredLimits: Record<string, number> = {};
    for (const key of LIMIT_KEYS) requiredLimits[key] = adapter.limits[key];
    const subgroups = adapter.features.has('subgroups') && options.features?.subgroups !== false;
    if ((options.tuning?.subgroupGemv || options.tuning?.subgroupReductions) && !subgroups) {
      throw new DeviceLimitError(`subgroup kernels were asked for, but the device has no 'subgroups' feature`);
    }
    const requiredFeatures = (subgroups ? ['subgroups'] : []) as GPUFeatureName[];
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    const limits = {} as GpuLimits;
    for (const key of LIMIT_KEYS) limits[key] = Math.min(device.limits[key], options.limits?.[key] ?? Infinity);
    const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    const features: GpuFeatures = {
      subgroups,
      subgroupMinSize: info?.subgroupMinSize,
      subgroupMaxSize: info?.subgroupMaxSize,
    };
    return new Gpu(gpu, device, describeAdapter(adapter.info), limits, shaders, features, options.tuning ?? {});
  }

  /**
   * This device with other kernel paths (benchmarks compare paths on one device with it): ops built
   * on the view take its tuning; buffers, pipelines and error handling are the device's own.
   */
  withTuning(tuning: Partial<KernelTuning>): Gpu {
    if ((tuning.subgroupGemv || tuning.subgroupReductions) && !this.features.subgroups) {
      throw new DeviceLimitError(`subgroup kernels were asked for, but the device has no 'subgroups' feature`);
    }
    return Object.assign(Object.create(this) as Gpu, { tuning: { ...this.tuning, ...tuning } });
  }

  /**
   * A compute pipeline, compiled once per key. The key must name everything the code and the
   * override constants depend on.
   */
  pipeline(key: string, code: () => string, constants?: Record<string, number>): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ label: key, code: code() });
      p = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Runs `work` (synchronous device calls) inside validation, out-of-memory and internal error scopes.
   * `error` resolves to the first error those calls raised, as a GpuError naming `what`, or undefined.
   * Scopes cost a push and a pop each: the per-step submission and the session allocation use them.
   */
  capture<T>(what: string, work: () => T): { result: T; error: Promise<GpuError | undefined> } {
    const filters: ScopeFilter[] = ['internal', 'out-of-memory', 'validation'];
    for (const f of filters) this.device.pushErrorScope(f);
    // Popped innermost first, in the same turn as the push, so no other caller's work is captured.
    const pop = (): Promise<GpuError | undefined> => {
      const popped = [...filters]
        .reverse()
        .map((f) => this.device.popErrorScope().then((e) => e && gpuError(what, f, e)));
      const first = Promise.all(popped).then((es) => es.find((e) => e !== null) ?? undefined);
      first.catch(() => {});
      return first;
    };
    let result: T;
    try {
      result = work();
    } catch (e) {
      void pop();
      throw e;
    }
    return { result, error: pop() };
  }

  /** The oldest error the device reported outside any scope since the last call, as a GpuError. */
  takeUncaptured(what: string): GpuError | undefined {
    const e = this.uncaptured.shift();
    this.uncaptured.length = 0;
    if (!e) return undefined;
    const kind: ScopeFilter = /OutOfMemory/.test(e.constructor.name)
      ? 'out-of-memory'
      : /Validation/.test(e.constructor.name)
        ? 'validation'
        : 'internal';
    return gpuError(what, kind, e);
  }

  buffer(label: string, size: number, usage: number): GPUBuffer {
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    if (bytes > this.limits.maxBufferSize) {
      throw new DeviceLimitError(
        `buffer '${label}' needs ${bytes} bytes; the device allows ${this.limits.maxBufferSize}`,
      );
    }
    const buffer = this.device.createBuffer({ label, size: bytes, usage });
    this.live.set(buffer, bytes);
    return buffer;
  }

  /**
   * Runs `create` and returns its result; when it throws, every buffer it created is destroyed first,
   * so a failed model upload leaves nothing half-loaded on the device.
   */
  allOrNothing<T>(create: () => T): T {
    const before = new Set(this.live.keys());
    try {
      return create();
    } catch (e) {
      for (const buffer of [...this.live.keys()]) if (!before.has(buffer)) this.destroy(buffer);
      throw e;
    }
  }

  /** A storage buffer initialised from `data` (padded to 16 bytes). */
  upload(label: string, data: ArrayBufferView, extraUsage = 0): GPUBuffer {
    const buffer = this.buffer(
      label,
      data.byteLength,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage,
    );
    this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength & ~3);
    const tail = data.byteLength & 3;
    if (tail) {
      const last = new Uint8Array(4);
      last.set(new Uint8Array(data.buffer, data.byteOffset + data.byteLength - tail, tail));
      this.device.queue.writeBuffer(buffer, data.byteLength - tail, last);
    }
    return buffer;
  }

  /** A 16-byte-aligned uniform buffer holding `words` as u32 (use `f32Bits` for floats). */
  uniform(label: string, words: number[]): GPUBuffer {
    const data = new Uint32Array(Math.max(4, Math.ceil(words.length / 4) * 4));
    data.set(words);
    const buffer = this.buffer(label, data.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  }

  destroy(buffer: GPUBuffer): void {
    if (this.live.delete(buffer)) buffer.destroy();
  }

  /** Bytes held by buffers created through this object and not destroyed. */
  get allocatedBytes(): number {
    let total = 0;
    for (const n of this.live.values()) total += n;
    return total;
  }

  /** Copies a buffer range to the CPU. Tests and the per-step readback use this; never per layer. */
  async read(buffer: GPUBuffer, byteLength: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    return out;
  }

  dispose(): void {
    for (const buffer of this.live.keys()) buffer.destroy();
    this.live.clear();
    this.pipelines.clear();
  }
}

function gpuError(what: string, kind: ScopeFilter, e: GPUError): GpuError {
  return new GpuError(`the GPU rejected ${what} (WebGPU ${kind} error): ${e.message}`, kind);
}

/** Bit pattern of an f32, for packing floats into `Gpu.uniform` word lists. */
export function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

function describeAdapter(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length ? [...new Set(parts)].join(' / ') : 'unknown adapter';
}
