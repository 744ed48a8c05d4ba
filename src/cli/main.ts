import { accessSync, closeSync, constants, openSync, statSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';
import { loadEngine, type SkipDecodeEngine } from '../api/node.ts';
import type { GenerateOutput, GenerateRequest } from '../api/types.ts';
import { SkipDecodeError, TokenizerError } from '../errors.ts';
import { openSource } from '../model/source-node.ts';
import { formatSchedule } from '../skip/schedule.ts';
import { OutputFileError, parseCommandLine, USAGE, UsageError, type GenerateArgs } from './args.ts';
import { runBench } from './bench.ts';
import { runExactBench } from './bench-exact.ts';
import { quantizeCheckpoint } from './quantize.ts';

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(USAGE);
    return 0;
  }
  const args = parseCommandLine(argv);
  // Before the model loads and the generation runs, so a bad path costs nothing and loses nothing.
  if (args.command === 'generate' && args.logitsOut) checkWritable(args.logitsOut);
  if (args.command === 'quantize') {
    const t0 = performance.now();
    const r = await quantizeCheckpoint(openSource(args.model), args.weights, args.out);
    console.log(
      `wrote ${args.out}: ${r.quantized} matrices as ${args.weights}, ${(r.bytes / 1e9).toFixed(3)} GB of tensors ` +
        `in ${r.files.join(', ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    return 0;
  }
  const engine = await loadEngine(openSource(args.model), {
    weights: args.weights,
    kvCache: args.kvCache,
    ...(!args.quantizedCache && { quantizedCache: false }),
  });
  if (args.command === 'bench') {
    await (args.exact ? runExactBench(engine, args) : runBench(engine, args));
    return 0;
  }
  await generate(engine, args);
  return 0;
}

/** The same request a library caller would make; the engine checks it. */
function toRequest(args: GenerateArgs): GenerateRequest {
  return {
    prompts: args.inputIds ?? args.prompts,
    maxNewTokens: args.maxNewTokens,
    eosTokenId: args.ignoreEos ? null : undefined,
    schedule: args.schedule,
    sampling: args.sampling,
    stop: args.stop,
    stopTokenIds: args.stopTokenIds,
    returnLogits: Boolean(args.logitsOut),
    exact: args.exact,
  };
}

async function generate(engine: SkipDecodeEngine, args: GenerateArgs): Promise<void> {
  if (args.prompts && !engine.info.hasTokenizer) {
    throw new TokenizerError(
      `--prompt needs a tokenizer.json beside the model (${args.model}); pass --input-ids instead`,
    );
  }
  const stream = engine.stream(toRequest(args));
  let accepted = false;
  for await (const _ of stream) {
    // The first step means the request passed the engine's checks: only now is the note worth printing.
    if (!accepted) warnIfNotTunedForSkipping(engine, args);
    accepted = true;
  }
  const out = await stream.result;
  if (args.logitsOut) writeLogits(args.logitsOut, out);
  const texts = engine.info.hasTokenizer ? out.texts : undefined;
  const m = out.metrics;
  if (args.json) {
    console.log(
      JSON.stringify({
        tokens: out.tokens,
        layersRun: out.layersRun,
        timing: out.timing,
        text: texts,
        finishReasons: out.finishReasons,
        schedule: out.schedule,
        seed: out.seed,
        metrics: m,
        ...(out.verdicts ? { verdicts: out.verdicts } : {}),
        adapter: engine.info.adapter,
      }),
    );
    return;
  }
  out.tokens.forEach((tokens, b) => {
    console.log(`[${b}] ${texts ? JSON.stringify(texts[b]) : tokens.join(',')}  (${out.finishReasons[b]})`);
  });
  console.log(
    `schedule ${out.schedule}: mean ${m.meanLayers.toFixed(2)} of ${engine.info.layers} layers, ` +
      `theoretical ${m.theoreticalSpeedup.toFixed(2)}x, bound ${m.boundSpeedup?.toFixed(2)}x; ` +
      `prefill ${out.timing.prefillMs.toFixed(1)} ms, decode ${m.decodeTokensPerSecond.toFixed(1)} tokens/s on ${engine.info.adapter}`,
  );
  const s = m.speculative;
  if (s) {
    console.log(
      `exact: ${s.cycles} cycles, ${s.accepted}/${s.drafted} drafts accepted (${(s.acceptanceRate * 100).toFixed(1)}%), ` +
        `${s.meanAcceptedPerCycle.toFixed(2)} per cycle; the output is full depth's`,
    );
  }
}

/** Skipping layers of a model not fine-tuned for it costs quality; say so rather than hide it. */
function warnIfNotTunedForSkipping(engine: SkipDecodeEngine, args: GenerateArgs): void {
  // Exact mode's output is full depth's: skipping only drafts, so quality is not at stake.
  if (args.schedule.kind === 'full' || args.exact || engine.info.fineTunedForSkipping) return;
  console.error(
    `note: ${formatSchedule(args.schedule)} skips layers of a model that was not fine-tuned for skipping; ` +
      'expect lower quality than at full depth (see training/ for the recipe that fixes this).',
  );
}

/** Refuses a --logits-out path that cannot be written: a folder, a missing folder, no permission. */
function checkWritable(file: string): void {
  const fail = (why: string): never => {
    throw new OutputFileError(`--logits-out ${file}: ${why}`);
  };
  const stats = statOf(file);
  if (stats?.isDirectory()) fail('is a folder; give a file name');
  const dir = path.dirname(path.resolve(file));
  if (!stats && !statOf(dir)?.isDirectory()) fail(`the folder ${dir} does not exist`);
  try {
    accessSync(stats ? file : dir, constants.W_OK);
  } catch {
    fail('is not writable');
  }
}

function statOf(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

/** Little-endian f32 [steps][batch][vocab]; step 0 is the prompt's last position. */
function writeLogits(file: string, out: GenerateOutput): void {
  try {
    const fd = openSync(file, 'w');
    try {
      for (const step of out.logits ?? []) {
        writeSync(fd, new Uint8Array(step.buffer, step.byteOffset, step.byteLength));
      }
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new OutputFileError(`--logits-out ${file}: ${(e as Error).message}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) console.error(`skipdecode: ${e.message}\n\n${USAGE}`);
    else if (e instanceof SkipDecodeError) console.error(`skipdecode: ${e.name}: ${e.message}`);
    else console.error(e);
    process.exit(e instanceof UsageError || e instanceof OutputFileError ? 2 : 1);
  },
);
