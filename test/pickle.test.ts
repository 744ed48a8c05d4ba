import { describe, expect, it } from 'vitest';
import { CheckpointFormatError } from '../src/errors.ts';
import {
  DEFAULT_PICKLE_LIMITS,
  describePy,
  opcodeName,
  PyDict,
  PyFloat,
  PyGlobal,
  PyList,
  PyObject,
  PyTuple,
  unpickle,
  type PickleHooks,
  type PyValue,
} from '../src/model/pickle.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const ascii = (s: string): Uint8Array => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

/** Hooks that allow `test.make` (REDUCE returns a tagged object) and `test.cls` (only a class name). */
const hooks: PickleHooks = {
  globals: new Set(['test.make', 'test.cls']),
  reduce: (fn, args) => {
    if (fn.name !== 'test.make') throw new CheckpointFormatError(`cannot call ${fn.name}`);
    return new PyObject('made', args.items);
  },
  build: (obj) => {
    throw new CheckpointFormatError(`no BUILD of ${describePy(obj)}`);
  },
  persistentLoad: (pid) => new PyObject('pid', pid),
};

function fails(bytes: Uint8Array, pattern: RegExp, limits = DEFAULT_PICKLE_LIMITS): void {
  let err: unknown;
  try {
    unpickle(bytes, hooks, 'p', limits);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CheckpointFormatError);
  expect((err as Error).message).toMatch(pattern);
}

/** Plain JS for comparisons: tuples as {tuple: [...]}, dicts as objects, floats as {float}. */
function plain(v: PyValue): unknown {
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (v instanceof PyList) return v.items.map(plain);
  if (v instanceof PyDict) return Object.fromEntries([...v.map].map(([k, x]) => [String(k), plain(x)]));
  if (v instanceof PyFloat) return { float: v.value };
  if (v instanceof PyGlobal) return { global: v.name };
  if (v instanceof PyObject) return { [v.type]: plain(v.value as PyValue) };
  return v;
}

// pickle.dumps(v, protocol=2 / 4) from CPython, for
// v = {'a': [1, -2, 300, 70000, -70000, 2**40, -2**63, 2**70, 1.5, None, True, False],
//      'b': ('x', 'ü', ()), 'c': {}, 'd': ('t1',), 'e': (1, 2, 3, 4)}
const PY_P2 =
  '80027d71002858010000006171015d7102284b014afeffffff4d2c014a701101004a90eefeff8a060000000000018a08000000000000' +
  '00808a09000000000000000040473ff80000000000004e888965580100000062710358010000007871045802000000c3bc7105298771' +
  '0658010000006371077d7108580100000064710958020000007431710a85710b580100000065710c284b014b024b034b0474710d752e';
const PY_P4 =
  '8004957a000000000000007d94288c0161945d94284b014afeffffff4d2c014a701101004a90eefeff8a060000000000018a08000000' +
  '00000000808a09000000000000000040473ff80000000000004e8889658c0162948c0178948c02c3bc942987948c0163947d948c0164' +
  '948c0274319485948c016594284b014b024b034b047494752e';
const EXPECTED = {
  a: [1, -2, 300, 70000, -70000, 2 ** 40, -(2n ** 63n), 2n ** 70n, { float: 1.5 }, null, true, false],
  b: { tuple: ['x', 'ü', { tuple: [] }] },
  c: {},
  d: { tuple: ['t1'] },
  e: { tuple: [1, 2, 3, 4] },
};

describe('unpickle', () => {
  it.each([
    ['protocol 2', PY_P2],
    ['protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE)', PY_P4],
  ])('reads plain data pickled by CPython, %s', (_, h) => {
    expect(plain(unpickle(hex(h), hooks))).toEqual(EXPECTED);
  });

  it('shares memoized objects, so cycles survive and describePy does not recurse', () => {
    // l = []; l.append(l); pickle.dumps([l, l], protocol=2)
    const v = unpickle(hex('80025d7100285d71016801616801652e'), hooks) as PyList;
    const inner = v.items[0] as PyList;
    expect(v.items[1]).toBe(inner);
    expect(inner.items[0]).toBe(inner);
    expect(describePy(v)).toBe('list of 2');
  });

  it('runs allowlisted globals only through the hooks, with LONG_BINPUT/LONG_BINGET and STACK_GLOBAL', () => {
    // GLOBAL test.make, LONG_BINPUT 300, (LONG_BINGET 300, 'k') REDUCE ... then STACK_GLOBAL 'test' 'cls'
    const bytes = new Uint8Array([
      ...hex('8002'),
      ...ascii('ctest\nmake\n'),
      ...hex('722c010000'),
      ...hex('6a2c010000'),
      ...hex('8c016b'),
      ...hex('86'),
      0x52,
      ...hex('8c0474657374'),
      ...hex('8c03636c73'),
      0x93,
      ...hex('4e51'), // None BINPERSID
      ...hex('87'),
      0x2e,
    ]);
    const v = unpickle(bytes, hooks) as PyTuple;
    expect(v.items).toHaveLength(3);
    expect((v.items[0] as PyObject).type).toBe('made');
    expect((v.items[0] as PyObject).value).toEqual([new PyGlobal('test.make'), 'k']);
    expect(v.items[1]).toEqual(new PyGlobal('test.cls'));
    expect((v.items[2] as PyObject).type).toBe('pid');
  });

  it('refuses globals off the allowlist, naming them, before anything else happens', () => {
    // class E: __reduce__ = lambda self: (os.system, ('echo pwned',)); pickle.dumps(E(), 2)
    fails(
      hex('800263706f7369780a73797374656d0a7100580a0000006563686f2070776e656471018571025271032e'),
      /GLOBAL posix.system/,
    );
    fails(ascii('\x80\x02cbuiltins\neval\n.'), /refusing GLOBAL builtins.eval: only tensor-rebuilding globals/);
    fails(
      new Uint8Array([0x80, 0x04, 0x8c, 8, ...ascii('builtins'), 0x8c, 4, ...ascii('exec'), 0x93, 0x2e]),
      /builtins.exec/,
    );
    fails(ascii('\x80\x02ctest\ncls\n)R.'), /cannot call test.cls/);
    fails(ascii('\x80\x02}N)R.'), /REDUCE on None, not an allowlisted global/);
    fails(ascii('\x80\x02ctest\nmake\nNR.'), /REDUCE of test.make with None, not a tuple/);
    fails(ascii('\x80\x02}}b.'), /no BUILD of dict of 0/);
  });

  it.each([
    ['INST', 'itest\nmake\n(.'],
    ['OBJ', '(ctest\nmake\no.'],
    ['NEWOBJ', 'ctest\nmake\n)\x81.'],
    ['STRING', "S'x'\n."],
    ['INT', 'I1\n.'],
    ['LONG', 'L1\n.'],
    ['FLOAT', 'F1.0\n.'],
    ['PERSID', 'P1\n.'],
    ['UNICODE', 'Vx\n.'],
    ['GET', 'g0\n.'],
    ['PUT', 'Np0\n.'],
    ['EXT1', '\x82\x01.'],
    ['DUP', 'N2.'],
    ['LONG4', '\x8b\x01\x00\x00\x00\x01.'],
    ['BINBYTES', 'B\x01\x00\x00\x00x.'],
    ['unknown opcode 0xff', '\xff.'],
  ])('refuses %s', (name, body) => {
    fails(ascii('\x80\x02' + body), new RegExp(`refusing opcode ${name}`));
  });

  it('names opcodes as pickletools does', () => {
    expect(opcodeName(0x63)).toBe('GLOBAL');
    expect(opcodeName(0x81)).toBe('NEWOBJ');
    expect(opcodeName(0xfe)).toBe('unknown opcode 0xfe');
  });

  it('refuses malformed streams with the byte offset', () => {
    fails(ascii('\x80\x02N'), /ended without STOP \(at byte 3\)/);
    fails(ascii('\x80\x02X\xff\x00\x00\x00abc.'), /truncated: BINUNICODE needs 255 more bytes \(at byte 2\)/);
    fails(hex('80028dffffffffffffff7f2e'), /truncated: BINUNICODE8/);
    fails(ascii('\x80\x02X\x02\x00\x00\x00\xc3\x28.'), /not valid UTF-8/);
    fails(ascii('\x80\x09N.'), /unsupported pickle protocol 9/);
    fails(ascii('\x80\x02NN.'), /STOP with 2 values/);
    fails(ascii('\x80\x02(N.'), /STOP inside an open MARK/);
    fails(ascii('\x80\x02N.N'), /1 bytes after STOP/);
    fails(ascii('\x80\x02.'), /STOP with 0 values/);
    fails(ascii('\x80\x02N(\x85.'), /TUPLE1 on an empty stack/);
    fails(ascii('\x80\x02Nt.'), /TUPLE without a MARK/);
    fails(ascii('\x80\x02h\x05.'), /memo key 5 was never stored/);
    fails(ascii('\x80\x02q\x00.'), /BINPUT on an empty stack/);
    fails(ascii('\x80\x02Na.'), /APPEND on an empty stack|APPEND on None/);
    fails(ascii('\x80\x02NNa.'), /APPEND on None, not a list/);
    fails(ascii('\x80\x02NNNs.'), /SETITEM on None, not a dict/);
    fails(ascii('\x80\x02}(NNNu.'), /odd number/);
    fails(ascii('\x80\x02}])s.'), /unsupported dict key type \(list of 0\)/);
    fails(ascii('\x80\x02ctest\nmake'), /short newline-terminated line/);
    fails(ascii('\x80\x02ctest\x01\nmake\n.'), /printable ASCII/);
    fails(ascii('\x80\x02NN\x93.'), /STACK_GLOBAL operands are not strings/);
  });

  it('enforces op, stack and memo limits', () => {
    const many = new Uint8Array(1000).fill(0x4e); // NONE x 1000
    const limits = { maxOps: 100, maxStack: 1e6, maxMemo: 1e6 };
    fails(many, /more than 100 opcodes/, limits);
    fails(many, /stack deeper than 50/, { ...limits, maxOps: 1e6, maxStack: 50 });
    const puts = new Uint8Array([0x4e, ...Array.from({ length: 100 }, (_, i) => [0x71, i]).flat(), 0x2e]);
    fails(puts, /memo larger than 10 entries/, { ...limits, maxOps: 1e6, maxMemo: 10 });
    // Re-putting the same key does not grow the memo.
    const same = new Uint8Array([0x4e, ...Array.from({ length: 100 }, () => [0x71, 7]).flat(), 0x2e]);
    expect(unpickle(same, hooks, 'p', { ...limits, maxOps: 1e6, maxMemo: 1 })).toBeNull();
  });
});
