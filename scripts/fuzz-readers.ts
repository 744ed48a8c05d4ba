/**
 * Fuzzes the checkpoint readers (parseSafetensors, parseTorchBin) with random and mutated inputs. Each
 * input must either parse into well-formed tensors (byte lengths matching shapes, views inside the
 * input) or throw CheckpointFormatError: any other error, a malformed result or a slow case is a
 * failure. test/fuzz.test.ts runs a short fixed-seed campaign; this CLI runs longer ones:
 *
 *   npx tsx scripts/fuzz-readers.ts [--seconds 60] [--seed N] [--out fuzz-failures]
 *
 * Failing inputs are written to --out so they can be replayed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CheckpointFormatError } from '../src/errors.ts';
import { DTYPE_BYTES } from '../src/model/dtype.ts';
import { encodeSafetensors, parseSafetensors } from '../src/model/safetensors.ts';
import { parseTorchBin } from '../src/model/torch-bin.ts';
import type { HostTensor } from '../src/model/weights.ts';
import {
  encodeStateDictPickle,
  encodeTorchArchive,
  encodeTorchBin,
  type PickledTensor,
  type StorageClass,
} from './write-torch-bin.ts';

export interface FuzzFailure {
  mutator: string;
  reader: string;
  problem: string;
  input: Uint8Array;
}

export interface FuzzStats {
  cases: number;
  /** Reader runs that returned tensors (the rest threw CheckpointFormatError, or failed). */
  accepted: number;
  runs: number;
  byMutator: Record<string, { cases: number; accepted: number }>;
  failures: FuzzFailure[];
  slowestMs: number;
  seconds: number;
}

export interface FuzzOptions {
  seed: number;
  /** Stop after this many inputs... */
  iterations?: number;
  /** ...or after this long, whichever comes first. */
  seconds?: number;
  /** A single reader run slower than this counts as a hang. */
  maxCaseMs?: number;
}

// Small op budgets: the seeds need a few hundred opcodes, so anything near these limits is hostile.
const LIMITS = { maxOps: 100_000, maxStack: 10_000, maxMemo: 10_000 };

type Rng = { u32(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean };

function makeRng(seed: number): Rng {
  let s = seed >>> 0;
  const u32 = (): number => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  const int = (n: number): number => (n <= 0 ? 0 : u32() % n);
  return { u32, int, pick: (xs) => xs[int(xs.length)], chance: (p) => u32() / 2 ** 32 < p };
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function tensor(dtype: HostTensor['dtype'], shape: number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  return { dtype, shape, data: new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff) };
}

function seeds(): { safetensors: Uint8Array[]; bins: Uint8Array[]; pickles: Uint8Array[] } {
  const t = {
    'model.decoder.embed_tokens.weight': tensor('F16', [6, 4], 1),
    'model.decoder.layers.0.fc1.bias': tensor('F32', [3], 2),
    'lm_head.weight': tensor('BF16', [2, 2, 2], 3),
    scalar: tensor('F32', [], 4),
  };
  const pickles = [
    encodeStateDictPickle(
      [
        [
          'a',
          { storageKey: '0', storageClass: 'HalfStorage', storageNumel: 24, offset: 0, size: [6, 4], stride: [4, 1] },
        ],
        [
          't',
          { storageKey: '0', storageClass: 'HalfStorage', storageNumel: 24, offset: 2, size: [4, 3], stride: [1, 4] },
        ],
        ['i', { storageKey: '1', storageClass: 'LongStorage', storageNumel: 2, offset: 0, size: [2], stride: [1] }],
      ],
      { ordered: true, metadata: ['', 'a'] },
    ),
  ];
  const strided = encodeTorchArchive(pickles[0], [
    { key: '0', data: tensor('F16', [24], 5).data },
    { key: '1', data: new Uint8Array(16) },
  ]);
  const bins = [
    encodeTorchBin(t, { ordered: true, metadata: ['', 'model', 'model.decoder'], archiveName: 'pytorch_model' }),
    encodeTorchBin(t, { legacyLayout: true }),
    encodeTorchBin(t, { zip64: true }),
    strided,
  ];
  return { safetensors: [encodeSafetensors(t, { format: 'pt' }), encodeSafetensors({})], bins, pickles };
}

const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** Mutators take a seed input and return a new one; none modifies its argument. */
const MUTATORS: Record<string, (r: Rng, x: Uint8Array) => Uint8Array> = {
  bitflip: (r, x) => {
    const y = x.slice();
    for (let i = 1 + r.int(8); i > 0 && y.length; i--) y[r.int(y.length)] ^= 1 << r.int(8);
    return y;
  },
  bytes: (r, x) => {
    const y = x.slice();
    for (let i = 1 + r.int(4); i > 0 && y.length; i--)
      y[r.int(y.length)] = r.pick([0, 0xff, 0x7f, 0x80, 1, r.int(256)]);
    return y;
  },
  truncate: (r, x) => x.slice(0, r.int(x.length)),
  insert: (r, x) => {
    const at = r.int(x.length + 1);
    const add = new Uint8Array(1 + r.int(70)).map(() => r.int(256));
    return new Uint8Array([...x.subarray(0, at), ...add, ...x.subarray(at)]);
  },
  erase: (r, x) => {
    const at = r.int(x.length);
    return new Uint8Array([...x.subarray(0, at), ...x.subarray(at + 1 + r.int(64))]);
  },
  splice: (r, x) => {
    const y = x.slice();
    const to = r.int(y.length);
    const from = r.int(x.length);
    y.set(x.subarray(from, from + Math.min(1 + r.int(48), y.length - to)), to);
    return y;
  },
  // Integer fields: zip sizes, offsets and counts sit in the last few hundred bytes.
  integer: (r, x) => {
    const y = x.slice();
    const width = r.pick([2, 4, 8]);
    if (y.length < width) return y;
    const near = r.chance(0.7) ? Math.max(0, y.length - 400) : 0;
    const at = near + r.int(y.length - width + 1 - near);
    const v = r.chance(0.5) ? r.pick(INTERESTING) : r.chance(0.5) ? x.length + r.int(9) - 4 : r.u32();
    const dv = new DataView(y.buffer);
    if (width === 2) dv.setUint16(at, v & 0xffff, true);
    else if (width === 4) dv.setUint32(at, v >>> 0, true);
    else dv.setBigUint64(at, r.chance(0.2) ? 2n ** 63n + BigInt(v) : BigInt(v), true);
    return y;
  },
  random: (r) => new Uint8Array(r.int(600)).map(() => r.int(256)),
};

/** Rewrites one field of a safetensors header, keeping the length prefix consistent (or not). */
function mutateSafetensorsHeader(r: Rng, x: Uint8Array): Uint8Array {
  const len = Number(new DataView(x.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(x.subarray(8, 8 + len))) as Record<
    string,
    Record<string, unknown>
  >;
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const weird = (): unknown =>
    r.pick([-1, 0, 1, 3, 2 ** 31, 2 ** 53, 2 ** 64, 1.5, '4', null, [], [1, 2, 3], {}, r.int(200), x.length]);
  if (names.length && r.chance(0.85)) {
    const e = header[r.pick(names)];
    const field = r.pick(['dtype', 'shape', 'data_offsets']);
    if (field === 'dtype') e.dtype = r.pick(['F32', 'F16', 'BF16', 'F64', 'I8', 'f32', 7]);
    else if (field === 'shape') e.shape = r.chance(0.5) ? [weird(), weird()].slice(0, 1 + r.int(2)) : weird();
    else {
      const o = (e.data_offsets as number[]) ?? [0, 0];
      e.data_offsets = r.chance(0.6) ? [r.chance(0.5) ? weird() : o[0], r.chance(0.5) ? weird() : o[1]] : weird();
    }
  } else {
    header[`t${r.int(9)}`] = { dtype: 'F32', shape: [r.int(5)], data_offsets: [r.int(80), r.int(80)] };
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const data = x.subarray(8 + len);
  const out = new Uint8Array(8 + json.length + data.length);
  const claimed = r.chance(0.8) ? json.length : r.pick([0, json.length - 1, json.length + 1, out.length, r.u32()]);
  new DataView(out.buffer).setBigUint64(0, BigInt(claimed), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const GLOBALS = [
  'collections\nOrderedDict\n',
  'torch._utils\n_rebuild_tensor_v2\n',
  'torch._utils\n_rebuild_parameter\n',
  'torch\nFloatStorage\n',
  'torch\nHalfStorage\n',
  'torch\nLongStorage\n',
  'os\nsystem\n',
];

/** A random opcode stream, mostly well-formed opcodes with plausible operands, wrapped in a torch zip. */
function randomPickle(r: Rng): Uint8Array {
  const out: number[] = [0x80, 2];
  const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  for (let n = r.int(120); n > 0; n--) {
    const op = r.int(14);
    if (op === 0) out.push(0x63, ...ascii(r.pick(GLOBALS)));
    else if (op === 1) out.push(0x58, ...u32(1), ...ascii(r.pick(['0', '1', 'a'])));
    else if (op === 2) out.push(0x58, ...u32(7), ...ascii('storage'));
    else if (op === 3) out.push(0x4b, r.int(256));
    else if (op === 4) out.push(0x4a, ...u32(r.chance(0.5) ? r.int(64) : r.u32()));
    else if (op === 5) out.push(r.pick([0x71, 0x68]), r.int(8));
    else if (op === 6) out.push(r.pick([0x28, 0x28, 0x74, 0x85, 0x86, 0x87, 0x29]));
    else if (op === 7) out.push(r.pick([0x7d, 0x73, 0x75, 0x5d, 0x61, 0x65]));
    else if (op === 8) out.push(r.pick([0x52, 0x62, 0x51, 0x89, 0x88, 0x4e]));
    else if (op === 9) out.push(0x8a, 1 + r.int(9), ...new Array<number>(9).fill(0).map(() => r.int(256)));
    else if (op === 10) out.push(0x8c, 3, ...ascii('cpu'));
    else if (op === 11) out.push(0x94);
    else out.push(r.int(256));
  }
  out.push(0x2e);
  const storages = [
    { key: '0', data: new Uint8Array(4 * r.int(8)) },
    { key: '1', data: new Uint8Array(2 * r.int(8)) },
  ];
  return encodeTorchArchive(new Uint8Array(out), storages);
}

const STORAGE_CLASSES: { cls: StorageClass; bytes: number }[] = [
  { cls: 'FloatStorage', bytes: 4 },
  { cls: 'HalfStorage', bytes: 2 },
  { cls: 'BFloat16Storage', bytes: 2 },
  { cls: 'LongStorage', bytes: 8 },
  { cls: 'DoubleStorage', bytes: 8 },
];

/**
 * Well-formed pickles of random tensor views: offsets, sizes, strides and storage lengths that are
 * often slightly wrong, which byte-level mutation rarely produces.
 */
function randomViews(r: Rng): Uint8Array {
  const storages = Array.from({ length: 1 + r.int(3) }, (_, i) => {
    const { cls, bytes } = r.pick(STORAGE_CLASSES.slice(0, r.chance(0.8) ? 3 : 5));
    const numel = r.int(40);
    const stored = r.chance(0.9) ? numel : numel + r.int(5) - 2;
    return { key: String(i), cls, numel, data: new Uint8Array(Math.max(0, stored) * bytes).map(() => r.int(256)) };
  });
  const dim = (): number => (r.chance(0.9) ? r.int(7) : r.pick([2 ** 31, 2 ** 40, 2 ** 53 - 1]));
  const entries: [string, PickledTensor][] = Array.from({ length: 1 + r.int(4) }, (_, i) => {
    const s = r.pick(storages);
    const size = Array.from({ length: r.int(4) }, dim);
    const contiguous = size.map((_, j) => size.slice(j + 1).reduce((a, b) => a * b, 1));
    const stride = r.chance(0.6) ? contiguous : size.map(() => r.int(r.chance(0.9) ? 12 : 2 ** 31));
    const offset = r.chance(0.6) ? r.int(4) : r.int(s.numel + 4);
    return [`t${i}`, { storageKey: s.key, storageClass: s.cls, storageNumel: s.numel, offset, size, stride }];
  });
  return encodeTorchArchive(encodeStateDictPickle(entries, { ordered: r.chance(0.5) }), storages);
}

function checkResult(out: Map<string, HostTensor>, input: Uint8Array): string | undefined {
  for (const [name, t] of out) {
    if (!['F32', 'F16', 'BF16'].includes(t.dtype)) return `"${name}": dtype ${t.dtype}`;
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return `"${name}": shape ${JSON.stringify(t.shape)}`;
    }
    if (!(t.data instanceof Uint8Array)) return `"${name}": data is not a Uint8Array`;
    const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== want) return `"${name}": ${t.data.byteLength} bytes for shape [${t.shape}]`;
    if (t.data.buffer === input.buffer && t.data.byteLength > 0) {
      const lo = input.byteOffset;
      if (t.data.byteOffset < lo || t.data.byteOffset + t.data.byteLength > lo + input.byteLength) {
        return `"${name}": view outside the input`;
      }
    }
  }
  return undefined;
}

export function fuzzReaders(opts: FuzzOptions): FuzzStats {
  const r = makeRng(opts.seed);
  const corpus = seeds();
  const maxCaseMs = opts.maxCaseMs ?? 2000;
  const deadline = performance.now() + (opts.seconds ?? Infinity) * 1000;
  const iterations = opts.iterations ?? Infinity;
  const stats: FuzzStats = { cases: 0, accepted: 0, runs: 0, byMutator: {}, failures: [], slowestMs: 0, seconds: 0 };
  const readers: [string, (b: Uint8Array) => Map<string, HostTensor>][] = [
    ['parseSafetensors', (b) => parseSafetensors(b)],
    ['parseTorchBin', (b) => parseTorchBin(b, { limits: LIMITS, verifyCrc: true })],
    ['parseTorchBin(no crc)', (b) => parseTorchBin(b, { limits: LIMITS, skipIntegerTensors: true })],
  ];
  const t0 = performance.now();
  while (stats.cases < iterations && performance.now() < deadline) {
    const kind = r.int(11);
    let mutator: string;
    let input: Uint8Array;
    if (kind === 0) {
      mutator = 'safetensors-header';
      input = mutateSafetensorsHeader(r, corpus.safetensors[0]);
    } else if (kind === 1) {
      mutator = 'pickle-stream';
      input = randomPickle(r);
    } else if (kind === 2) {
      // A mutated data.pkl in a valid zip, so the CRC check does not hide the pickle VM from the fuzzer.
      mutator = 'pickle-mutated';
      const m = r.pick(['bitflip', 'bytes', 'truncate', 'insert', 'erase', 'splice']);
      input = encodeTorchArchive(MUTATORS[m](r, r.pick(corpus.pickles)), [
        { key: '0', data: new Uint8Array(48) },
        { key: '1', data: new Uint8Array(16) },
      ]);
    } else if (kind === 3) {
      mutator = 'tensor-views';
      input = randomViews(r);
    } else {
      mutator = r.pick(Object.keys(MUTATORS));
      const base = r.chance(0.3) ? r.pick(corpus.safetensors) : r.pick(corpus.bins);
      input = MUTATORS[mutator](r, base);
      if (r.chance(0.3)) input = MUTATORS[r.pick(Object.keys(MUTATORS))](r, input);
    }
    // Sometimes hand the reader a view into a larger buffer, to catch reads that ignore byteOffset.
    if (r.chance(0.2)) {
      const big = new Uint8Array(input.length + 64).fill(0x50);
      const at = 1 + r.int(60);
      big.set(input, at);
      input = big.subarray(at, at + input.length);
    }
    stats.cases++;
    const m = (stats.byMutator[mutator] ??= { cases: 0, accepted: 0 });
    m.cases++;
    for (const [name, read] of readers) {
      stats.runs++;
      const start = performance.now();
      let problem: string | undefined;
      try {
        const out = read(input);
        problem = checkResult(out, input);
        if (!problem) {
          stats.accepted++;
          m.accepted++;
        }
      } catch (e) {
        if (!(e instanceof CheckpointFormatError)) problem = `threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
      }
      const ms = performance.now() - start;
      stats.slowestMs = Math.max(stats.slowestMs, ms);
      if (!problem && ms > maxCaseMs) problem = `took ${ms.toFixed(0)} ms`;
      if (problem) stats.failures.push({ mutator, reader: name, problem, input: input.slice() });
    }
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const opt = (flag: string, dflt: string): string => {
    const i = args.indexOf(flag);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
  };
  const seconds = Number(opt('--seconds', '60'));
  const seed = Number(opt('--seed', String(Date.now() % 2 ** 31)));
  const outDir = opt('--out', 'fuzz-failures');
  console.log(`fuzzing parseSafetensors and parseTorchBin for ${seconds}s, seed ${seed}`);
  const s = fuzzReaders({ seed, seconds });
  console.log(
    `${s.cases} inputs, ${s.runs} reader runs in ${s.seconds.toFixed(1)}s; ${s.accepted} accepted, ` +
      `slowest run ${s.slowestMs.toFixed(1)} ms, ${s.failures.length} failures`,
  );
  for (const [k, v] of Object.entries(s.byMutator).sort())
    console.log(`  ${k.padEnd(20)} ${v.cases} inputs, ${v.accepted} accepted`);
  if (s.failures.length) {
    mkdirSync(outDir, { recursive: true });
    s.failures.slice(0, 50).forEach((f, i) => {
      const file = path.join(outDir, `seed${seed}-${i}-${f.mutator}.bin`);
      writeFileSync(file, f.input);
      console.log(`FAIL ${f.reader} (${f.mutator}): ${f.problem} -> ${file}`);
    });
    process.exit(1);
  }
}
