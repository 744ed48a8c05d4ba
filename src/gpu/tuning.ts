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
  /** Decode linears run linear_gemv_subgroup.wgsl instead of linear_gemv.wgsl. Needs `GpuFeatures.subgroups`. */
  subgroupGemv: boolean;
  /**
   * attention_split.wgsl reduces with reduce_subgroup.wgsl instead of reduce_workgroup.wgsl's
   * barrier tree. Needs `GpuFeatures.subgroups`.
   */
  subgroupReductions: boolean;
  /**
   * Attention for steps of at most SPLIT_MAX_TOKENS tokens per sequence (decode) splits the keys
   * into blocks (attention_split.wgsl + attention_reduce.wgsl) once a query sees at least this many
   * keys; below it one workgroup per (query, head) attends alone (attention.wgsl). Infinity: never.
   */
  attentionSplitMinKeys: number;
  /** Keys per attention_split.wgsl workgroup. */
  attentionSplitBlock: number;
}

/** CPU adapters run invocations as SIMD lanes, so barrier-free single-lane paths win there. */
export function isCpuAdapterName(adapterName: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|software/i.test(adapterName);
}

/**
 * Measured on lavapipe (README, "Kernels for real GPUs"; bench/bandwidth.ts, bench/context.ts):
 * the subgroup gemv against linear_gemv's one-row-per-lane path was within the noise of a loaded
 * 2-core machine (0.8x to 3.6x per shape), so CPU adapters keep the path the rest of the numbers
 * were taken with; the subgroup reductions replace barrier trees wherever the feature exists; and
 * splitting attention's keys never paid
 * (0.6x-0.75x a whole decode step at 1,900 keys, batch 1): a CPU adapter already has more (sequence,
 * head) workgroups than cores, so a split only adds a pass. On GPUs a decode step with few
 * (sequence, head) pairs leaves most of the device idle without a split, so it splits from 128
 * keys (two 64-key blocks per pair): reasoned, not measured, since no GPU was available; re-measure
 * with `bench/context.ts` on the device.
 */
export function defaultKernelTuning(features: GpuFeatures, adapterName: string): KernelTuning {
  const cpu = isCpuAdapterName(adapterName);
  return {
    subgroupGemv: features.subgroups && !cpu,
    subgroupReductions: features.subgroups,
    attentionSplitMinKeys: cpu ? Infinity : 128,
    attentionSplitBlock: 64,
  };
}
