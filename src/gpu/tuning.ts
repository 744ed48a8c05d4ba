/**
 * Which kernel paths a device runs. `GpuFeatures` is what the device was created with (optional
 * WebGPU features the kernels can use); `KernelTuning` is the choice made from them and from the
 * adapter's kind, overridable through `GpuOptions.tuning` (benchmarks force each path) and per op
 * (kernel tests run every path on one device).
 */

/** Optional features the device was created with; requested whenever the adapter offers them. */
export interface GpuFeatures {
  /** WGSL `enable subgroups;`: subgroupAdd/Max/Elect and the subgroup_size builtin. */
  subgroups: boolean;
  /** The adapter's subgroup size range where it reports one (kernels handle any size from 4 to 128). */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

export interface KernelTuning {
  /**
   * Reductions with subgroup operations (linear_gemv_subgroup.wgsl, attention_split.wgsl's
   * subgroup reductions) instead of workgroup-memory trees. Needs `GpuFeatures.subgroups`.
   */
  subgroups: boolean;
  /**
   * Attention for steps of at most SPLIT_MAX_TOKENS tokens per sequence (decode) splits the keys
   * into blocks (attention_split.wgsl + attention_reduce.wgsl) once a query sees at least this many
   * keys; below it one workgroup per (query, head) attends alone (attention.wgsl). Infinity: never.
   */
  attentionSplitMinKeys: number;
}

/** CPU adapters run invocations as SIMD lanes, so barrier-free single-lane paths win there. */
export function isCpuAdapterName(adapterName: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|software/i.test(adapterName);
}

/**
 * Measured on lavapipe (README, "Kernels for real GPUs"): linear_gemv's one-row-per-lane path beats
 * the subgroup gemv there, and splitting attention's keys pays from about 256 visible keys.
 * On GPUs subgroup reductions replace barrier trees wherever the adapter has them, and a decode
 * step with few (sequence, head) pairs leaves most of the GPU idle without a split, so it splits
 * from 128 keys (reasoned: one 64-key block per workgroup already fills more workgroups than
 * batch x heads alone; to be re-measured on a real GPU with `npm run bench:gpu`).
 */
export function defaultKernelTuning(features: GpuFeatures, adapterName: string): KernelTuning {
  const cpu = isCpuAdapterName(adapterName);
  return {
    subgroups: features.subgroups && !cpu,
    attentionSplitMinKeys: cpu ? 256 : 128,
  };
}
