/**
 * `skipdecode quantize`: a checkpoint's matrices quantized once (src/model/quantize.ts) and written as
 * a hub-layout folder that `--model` / `createEngine` load directly, with no f16 download and no
 * quantization at load: how a site would host OPT-6.7B for browsers. Layout in
 * src/model/quantized-layout.ts (read back by src/model/quantized-checkpoint.ts); config.json gains
 * `"quantization"`.
 */
import { readCheckpoint } from '../model/checkpoint.ts';
import { writeStoredFiles } from '../model/quantized-files-node.ts';
import { COPIED_FILES, quantizedLayout } from '../model/quantized-layout.ts';
import type { QuantScheme } from '../model/quantize.ts';
import type { ModelSource } from '../model/source.ts';

export interface QuantizeResult {
  files: string[];
  bytes: number;
  quantized: number;
}

/** Reads `source` quantizing as it goes (one f16 tensor in memory at a time), then writes `outDir`. */
export async function quantizeCheckpoint(
  source: ModelSource,
  scheme: QuantScheme,
  outDir: string,
): Promise<QuantizeResult> {
  const { tensors } = await readCheckpoint(source, { weights: scheme });
  const raw = JSON.parse(await source.readText('config.json')) as Record<string, unknown>;
  const extra = new Map<string, Uint8Array>();
  for (const f of COPIED_FILES) if (await source.exists(f)) extra.set(f, await source.readBytes(f));
  const layout = quantizedLayout(raw, tensors, scheme, extra);
  writeStoredFiles(outDir, layout.files);
  return { files: layout.files.map((f) => f.name), bytes: layout.bytes, quantized: layout.quantized };
}
