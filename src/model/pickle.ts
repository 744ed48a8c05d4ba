import { CheckpointFormatError } from '../errors.ts';

/**
 * A restricted pickle reader. It understands only the opcodes needed to rebuild plain data (dicts,
 * lists, tuples, strings, numbers) plus three hooks the caller fills in: which GLOBALs may be named,
 * what REDUCE/BUILD on those do, and what a persistent id (BINPERSID) stands for. Nothing is ever
 * imported or executed: a GLOBAL outside the allowlist, and every opcode not listed below (INST, OBJ,
 * NEWOBJ, the text-eval opcodes of protocol 0, ...), is refused with CheckpointFormatError. Work,
 * stack and memo are bounded so that hostile input fails fast instead of hanging or exhausting memory.
 */

/** An opaque object made by the caller's hooks (a tensor, a storage); the VM never looks inside. */
export class PyObject {
  constructor(
    readonly type: string,
    readonly value: unknown,
  ) {}
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyList {
  readonly items: PyValue[] = [];
}

export type PyKey = string | number | boolean | null;

export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** 'dict', or the allowlisted class whose REDUCE produced it (e.g. 'collections.OrderedDict'). */
  constructor(readonly className = 'dict') {}
}

/** Python floats stay distinct from ints so that a float can never pass where a size is expected. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** An allowlisted `module.name`, as pushed by GLOBAL; only the hooks give it meaning. */
export class PyGlobal {
  constructor(readonly name: string) {}
}

/** Ints are numbers when they are safe integers, bigints beyond that. */
export type PyValue =
  null | boolean | number | bigint | string | PyTuple | PyList | PyDict | PyFloat | PyGlobal | PyObject;

export interface PickleLimits {
  /** Opcodes executed. */
  maxOps: number;
  /** Values on the stack, all marks together. */
  maxStack: number;
  /** Memo entries. */
  maxMemo: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = { maxOps: 50_000_000, maxStack: 1_000_000, maxMemo: 10_000_000 };

export interface PickleHooks {
  /** `module.name` strings a GLOBAL may name. */
  globals: ReadonlySet<string>;
  /** REDUCE on an allowlisted global; return the result or throw CheckpointFormatError. */
  reduce(fn: PyGlobal, args: PyTuple): PyValue;
  /** BUILD (setstate); return the (possibly same) object or throw. */
  build(obj: PyValue, state: PyValue): PyValue;
  /** BINPERSID: what a persistent id stands for. */
  persistentLoad(pid: PyValue): PyValue;
}

/** A short description of a value for messages; never recurses, since pickles can hold cycles. */
export function describePy(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return `int ${v}`;
  if (typeof v === 'string') return `str ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  if (v instanceof PyTuple) return `tuple of ${v.items.length}`;
  if (v instanceof PyList) return `list of ${v.items.length}`;
  if (v instanceof PyDict) return `${v.className} of ${v.map.size}`;
  if (v instanceof PyFloat) return `float ${v.value}`;
  if (v instanceof PyGlobal) return `global ${v.name}`;
  return v.type;
}

// Opcode bytes, named as in CPython's pickletools.
const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  BINPERSID: 0x51, // Q
  REDUCE: 0x52, // R
  BINUNICODE: 0x58, // X
  EMPTY_LIST: 0x5d, // ]
  APPEND: 0x61, // a
  BUILD: 0x62, // b
  GLOBAL: 0x63, // c
  APPENDS: 0x65, // e
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  SETITEMS: 0x75, // u
  EMPTY_DICT: 0x7d, // }
  EMPTY_TUPLE: 0x29, // )
  BINFLOAT: 0x47, // G
  PROTO: 0x80,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
} as const;

// Opcodes this reader refuses, named only so that the refusal can say which one it met.
const REFUSED =
  '30 POP 31 POP_MARK 32 DUP 42 BINBYTES 43 SHORT_BINBYTES 46 FLOAT 49 INT 4c LONG 50 PERSID 53 STRING ' +
  '54 BINSTRING 55 SHORT_BINSTRING 56 UNICODE 64 DICT 67 GET 69 INST 6c LIST 6f OBJ 70 PUT 81 NEWOBJ 82 EXT1 ' +
  '83 EXT2 84 EXT4 8b LONG4 8e BINBYTES8 8f EMPTY_SET 90 ADDITEMS 91 FROZENSET 92 NEWOBJ_EX 96 BYTEARRAY8 ' +
  '97 NEXT_BUFFER 98 READONLY_BUFFER';
const OP_NAMES: Record<number, string> = {};
const refused = REFUSED.split(' ');
for (let i = 0; i < refused.length; i += 2) OP_NAMES[parseInt(refused[i], 16)] = refused[i + 1];
for (const [name, code] of Object.entries(OP)) OP_NAMES[code] = name;

/** The pickletools name of an opcode byte, for messages. */
export function opcodeName(code: number): string {
  return OP_NAMES[code] ?? `unknown opcode 0x${code.toString(16).padStart(2, '0')}`;
}

const MARK = Symbol('mark');

/**
 * Runs the pickle in `bytes` and returns the value STOP leaves. `what` names the source in errors.
 * The whole input must be one pickle: bytes after STOP are refused.
 */
export function unpickle(
  bytes: Uint8Array,
  hooks: PickleHooks,
  what = 'pickle',
  limits: PickleLimits = DEFAULT_PICKLE_LIMITS,
): PyValue {
  let pos = 0;
  let opStart = 0;
  const bad = (msg: string): never => {
    throw new CheckpointFormatError(`${what}: ${msg} (at byte ${opStart})`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (n: number): number => {
    if (n > bytes.byteLength - pos) bad(`truncated: ${opcodeName(bytes[opStart])} needs ${n} more bytes`);
    const at = pos;
    pos += n;
    return at;
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const readUtf8 = (n: number): string => {
    const at = need(n);
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      return bad('string is not valid UTF-8');
    }
  };
  // GLOBAL's operands are two newline-terminated ASCII lines.
  const readLine = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0 || nl - pos > 256) bad('GLOBAL operand is not a short newline-terminated line');
    let s = '';
    for (let i = pos; i < nl; i++) {
      if (bytes[i] < 0x20 || bytes[i] > 0x7e) bad('GLOBAL operand is not printable ASCII');
      s += String.fromCharCode(bytes[i]);
    }
    pos = nl + 1;
    return s;
  };

  const stack: (PyValue | typeof MARK)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  const push = (v: PyValue | typeof MARK): void => {
    if (stack.length >= limits.maxStack) bad(`stack deeper than ${limits.maxStack}`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    const floor = marks.length ? marks[marks.length - 1] + 1 : 0;
    if (stack.length <= floor) bad(`${opcodeName(bytes[opStart])} on an empty stack`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    const floor = marks.length ? marks[marks.length - 1] + 1 : 0;
    if (stack.length <= floor) bad(`${opcodeName(bytes[opStart])} on an empty stack`);
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) bad(`${opcodeName(bytes[opStart])} without a MARK`);
    const items = stack.splice(m as number) as PyValue[];
    items.shift(); // the mark itself
    return items;
  };
  const put = (idx: number): void => {
    if (!memo.has(idx) && memo.size >= limits.maxMemo) bad(`memo larger than ${limits.maxMemo} entries`);
    memo.set(idx, top());
  };
  const get = (idx: number): void => {
    if (!memo.has(idx)) bad(`memo key ${idx} was never stored`);
    push(memo.get(idx) as PyValue);
  };
  const pushGlobal = (module: string, name: string): void => {
    const full = `${module}.${name}`;
    if (!hooks.globals.has(full)) {
      bad(`refusing GLOBAL ${full}: only tensor-rebuilding globals are allowed, nothing is imported or run`);
    }
    push(new PyGlobal(full));
  };
  const setItems = (dict: PyValue, items: PyValue[]): void => {
    if (!(dict instanceof PyDict)) return bad(`${opcodeName(bytes[opStart])} on ${describePy(dict)}, not a dict`);
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (!(k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean')) {
        bad(`unsupported dict key type (${describePy(k)})`);
      }
      dict.map.set(k as PyKey, items[i + 1]);
    }
  };

  for (let ops = 0; ; ops++) {
    opStart = pos;
    if (ops >= limits.maxOps) bad(`more than ${limits.maxOps} opcodes`);
    if (pos >= bytes.byteLength) bad('ended without STOP');
    const code = bytes[pos++];
    switch (code) {
      case OP.PROTO: {
        const v = bytes[need(1)];
        if (v < 2 || v > 5) bad(`unsupported pickle protocol ${v}`);
        break;
      }
      case OP.FRAME:
        // Framing only groups opcodes for buffered reads; the frame length itself carries no data.
        need(8);
        break;
      case OP.STOP: {
        if (marks.length) bad('STOP inside an open MARK');
        if (stack.length !== 1) bad(`STOP with ${stack.length} values on the stack`);
        if (pos !== bytes.byteLength) bad(`${bytes.byteLength - pos} bytes after STOP`);
        return stack[0] as PyValue;
      }
      case OP.MARK:
        push(MARK);
        marks.push(stack.length - 1);
        break;
      case OP.NONE:
        push(null);
        break;
      case OP.NEWTRUE:
        push(true);
        break;
      case OP.NEWFALSE:
        push(false);
        break;
      case OP.BININT:
        push(dv.getInt32(need(4), true));
        break;
      case OP.BININT1:
        push(bytes[need(1)]);
        break;
      case OP.BININT2:
        push(dv.getUint16(need(2), true));
        break;
      case OP.LONG1: {
        const n = bytes[need(1)];
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
        if (n > 0 && bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n); // two's complement
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case OP.BINFLOAT:
        push(new PyFloat(dv.getFloat64(need(8), false)));
        break;
      case OP.SHORT_BINUNICODE:
        push(readUtf8(bytes[need(1)]));
        break;
      case OP.BINUNICODE:
        push(readUtf8(dv.getUint32(need(4), true)));
        break;
      case OP.BINUNICODE8: {
        const n = dv.getBigUint64(need(8), true);
        if (n > BigInt(bytes.byteLength - pos)) bad(`truncated: BINUNICODE8 needs ${n} more bytes`);
        push(readUtf8(Number(n)));
        break;
      }
      case OP.EMPTY_TUPLE:
        push(new PyTuple([]));
        break;
      case OP.TUPLE1:
      case OP.TUPLE2:
      case OP.TUPLE3: {
        const n = code - OP.TUPLE1 + 1;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(new PyTuple(items));
        break;
      }
      case OP.TUPLE:
        push(new PyTuple(popMark()));
        break;
      case OP.EMPTY_LIST:
        push(new PyList());
        break;
      case OP.APPEND: {
        const v = pop();
        const list = top();
        if (!(list instanceof PyList)) bad(`APPEND on ${describePy(list)}, not a list`);
        (list as PyList).items.push(v);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        const list = top();
        if (!(list instanceof PyList)) bad(`APPENDS on ${describePy(list)}, not a list`);
        for (const v of items) (list as PyList).items.push(v);
        break;
      }
      case OP.EMPTY_DICT:
        push(new PyDict());
        break;
      case OP.SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        if (items.length % 2) bad('SETITEMS with an odd number of values');
        setItems(top(), items);
        break;
      }
      case OP.BINPUT:
        put(bytes[need(1)]);
        break;
      case OP.LONG_BINPUT:
        put(dv.getUint32(need(4), true));
        break;
      case OP.MEMOIZE:
        put(memo.size);
        break;
      case OP.BINGET:
        get(bytes[need(1)]);
        break;
      case OP.LONG_BINGET:
        get(dv.getUint32(need(4), true));
        break;
      case OP.GLOBAL: {
        const module = readLine();
        pushGlobal(module, readLine());
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') bad('STACK_GLOBAL operands are not strings');
        pushGlobal(module as string, name as string);
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal)) return bad(`REDUCE on ${describePy(fn)}, not an allowlisted global`);
        if (!(args instanceof PyTuple)) return bad(`REDUCE of ${fn.name} with ${describePy(args)}, not a tuple`);
        push(hooks.reduce(fn, args));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        push(hooks.build(pop(), state));
        break;
      }
      case OP.BINPERSID:
        push(hooks.persistentLoad(pop()));
        break;
      default:
        bad(`refusing opcode ${opcodeName(code)}: not needed for a state_dict of tensors`);
    }
  }
}
