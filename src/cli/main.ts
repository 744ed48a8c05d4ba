import { writeFileSync } from 'node:fs';
import { OptEngine, type EngineResult } from '../engine/engine.ts';
import { nodeGpu } from '../gpu/node.ts';
import { openSource } from '../model/source-node.ts';
import { SkipDecodeError, TokenizerError } from '../errors.ts';
import { formatSchedule } from '../skip/schedule.ts';
import { parseCommandLine, USAGE, UsageError, type GenerateArgs } from './args.ts';
import { runBench } from './bench.ts';

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(USAGE);
    return 0;
  }
  const args = parseCommandLine(argv);
  const gpu = await nodeGpu();
  const engine = await OptEngine.load(gpu, openSource(args.model));
  if (args.command === 'bench') {
    await runBench(engine, args);
    return 0;
  }
  await generate(engine, args);
  return 0;
}

async function generate(engine: OptEngine, args: GenerateArgs): Promise<void> {
  let prompts = args.inputIds;
  if (!prompts) {
    if (!engine.tokenizer) {
      throw new TokenizerError(
        `--prompt needs a tokenizer.json beside the model (${args.model}); pass --input-ids instead`,
      );
    }
    prompts = args.prompts!.map((p) => engine.tokenizer!.encode(p));
  }
  warnIfNotTunedForSkipping(engine, args);
  const result = await engine.generate(prompts, {
    maxNewTokens: args.maxNewTokens,
    eosTokenId: args.ignoreEos ? null : undefined,
    schedule: args.schedule,
    sampling: args.sampling,
    stopStrings: args.stop,
    stopTokenIds: args.stopTokenIds,
    returnLogits: Boolean(args.logitsOut),
  });
  if (args.logitsOut) writeLogits(args.logitsOut, result);
  const texts = engine.tokenizer ? result.tokens.map((t) => engine.tokenizer!.decode(t, true)) : undefined;
  if (args.json) {
    console.log(
      JSON.stringify({
        tokens: result.tokens,
        layersRun: result.layersRun,
        timing: result.timing,
        text: texts,
        finishReasons: result.finishReasons,
        schedule: result.schedule,
        seed: result.seed,
        metrics: result.metrics,
        adapter: engine.gpu.adapterName,
      }),
    );
    return;
  }
  result.tokens.forEach((tokens, b) => {
    console.log(`[${b}] ${texts ? JSON.stringify(texts[b]) : tokens.join(',')}  (${result.finishReasons[b]})`);
  });
  const m = result.metrics;
  console.log(
    `schedule ${result.schedule}: mean ${m.meanLayers.toFixed(2)} of ${engine.config.num_hidden_layers} layers, ` +
      `theoretical ${m.theoreticalSpeedup.toFixed(2)}x, bound ${m.boundSpeedup?.toFixed(2)}x; ` +
      `prefill ${result.timing.prefillMs.toFixed(1)} ms, decode ${result.timing.decodeTokensPerSecond.toFixed(1)} tokens/s on ${engine.gpu.adapterName}`,
  );
}

/** Skipping layers of a model not fine-tuned for it costs quality; say so rather than hide it. */
function warnIfNotTunedForSkipping(engine: OptEngine, args: GenerateArgs): void {
  if (args.schedule.kind === 'full' || engine.config.skipdecode?.fine_tuned) return;
  console.error(
    `note: ${formatSchedule(args.schedule)} skips layers of a model that was not fine-tuned for skipping; ` +
      'expect lower quality than at full depth (see training/ for the recipe that fixes this).',
  );
}

/** Little-endian f32 [steps][batch][vocab]; step 0 is the prompt's last position. */
function writeLogits(file: string, result: EngineResult): void {
  const steps = result.logits ?? [];
  const total = steps.reduce((n, s) => n + s.length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const s of steps) {
    out.set(s, at);
    at += s.length;
  }
  writeFileSync(file, new Uint8Array(out.buffer));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) console.error(`skipdecode: ${e.message}\n\n${USAGE}`);
    else if (e instanceof SkipDecodeError) console.error(`skipdecode: ${e.name}: ${e.message}`);
    else console.error(e);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
