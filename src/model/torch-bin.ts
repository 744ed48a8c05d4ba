import { CheckpointFormatError } from '../errors.ts';
import {
  DEFAULT_PICKLE_LIMITS,
  describePy,
  PyDict,
  PyGlobal,
  PyObject,
  PyTuple,
  unpickle,
  type PickleLimits,
  type PyValue,
} from './pickle.ts';
import type { HostTensor, TensorDType } from './weights.ts';
import { crc32, openZip, type ZipArchive } from './zip.ts';

/**
 * PyTorch's `torch.save` checkpoints (pytorch_model.bin) since PyTorch 1.6: a stored ZIP archive whose
 * entries share one top folder (the saved file's base name, or `archive`): `data.pkl`, a pickle of the
 * state_dict in which every tensor is `_rebuild_tensor_v2(storage, offset, size, stride, ...)` and
 * every storage a persistent id `('storage', torch.HalfStorage, key, location, numel)`, and
 * `data/<key>`, the raw little-endian bytes of each storage. The pickle runs in a VM that only knows
 * those few globals (see pickle.ts); nothing from the file is ever executed.
 */

export interface TorchBinOptions {
  /** Names the file in error messages. */
  what?: string;
  /**
   * Drop integer and bool tensors instead of failing on them (buffers such as `position_ids` that
   * some exporters save; never weights). Float64 and other dtypes still fail.
   */
  skipIntegerTensors?: boolean;
  /** Also check the CRC-32 of every storage (data.pkl's is always checked); costs a pass over the file. */
  verifyCrc?: boolean;
  limits?: PickleLimits;
}

interface StorageClass {
  dtype: string;
  bytes: number;
  host?: TensorDType;
  integer?: boolean;
}

// Storage classes as torch pickles them. Naming one only selects an element size here.
const STORAGES: Record<string, StorageClass> = {
  'torch.FloatStorage': { dtype: 'float32', bytes: 4, host: 'F32' },
  'torch.HalfStorage': { dtype: 'float16', bytes: 2, host: 'F16' },
  'torch.BFloat16Storage': { dtype: 'bfloat16', bytes: 2, host: 'BF16' },
  'torch.DoubleStorage': { dtype: 'float64', bytes: 8 },
  'torch.LongStorage': { dtype: 'int64', bytes: 8, integer: true },
  'torch.IntStorage': { dtype: 'int32', bytes: 4, integer: true },
  'torch.ShortStorage': { dtype: 'int16', bytes: 2, integer: true },
  'torch.CharStorage': { dtype: 'int8', bytes: 1, integer: true },
  'torch.ByteStorage': { dtype: 'uint8', bytes: 1, integer: true },
  'torch.BoolStorage': { dtype: 'bool', bytes: 1, integer: true },
};
const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const GLOBALS: ReadonlySet<string> = new Set([
  ORDERED_DICT,
  REBUILD_TENSOR,
  REBUILD_PARAMETER,
  ...Object.keys(STORAGES),
]);

interface Storage {
  key: string;
  cls: StorageClass;
  numel: number;
  bytes: Uint8Array;
}

interface TensorRef {
  storage: Storage;
  offset: number;
  size: number[];
  stride: number[];
}

const isCount = (v: PyValue): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Reads a torch.save checkpoint held in memory into tensors by name. Contiguous tensors are views
 * into `bytes` (keep it alive and unmodified); a strided tensor is copied into row-major order.
 */
export function parseTorchBin(bytes: Uint8Array, options: TorchBinOptions = {}): Map<string, HostTensor> {
  const what = options.what ?? 'PyTorch checkpoint';
  const bad = (msg: string): never => {
    throw new CheckpointFormatError(`${what}: ${msg}`);
  };
  if (bytes.byteLength < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b || bytes[2] !== 0x03 || bytes[3] !== 0x04) {
    bad(
      bytes[0] === 0x80
        ? 'this is the legacy (pre-1.6) torch.save format, which is not supported; load and re-save it ' +
            'with a current PyTorch, or convert it to safetensors'
        : 'not a zip archive, so not a torch.save checkpoint',
    );
  }
  const zip: ZipArchive = openZip(bytes, what);
  const first = zip.entries[0]?.name ?? '';
  const slash = first.indexOf('/');
  // As PyTorch's own reader: the first entry's folder is the archive's prefix.
  if (slash <= 0) bad(`first entry ${JSON.stringify(first)} is not inside a folder, as torch.save writes`);
  const prefix = first.slice(0, slash + 1);

  const byteorder = zip.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(zip.data(byteorder));
    if (order !== 'little') bad(`byte order ${JSON.stringify(order)}; only little-endian checkpoints are supported`);
  }
  const pklEntry = zip.get(`${prefix}data.pkl`);
  if (!pklEntry) bad(`no ${prefix}data.pkl (a TorchScript archive or another zip file?)`);
  const pkl = zip.data(pklEntry as NonNullable<typeof pklEntry>);
  if (crc32(pkl) !== pklEntry!.crc32) bad(`${prefix}data.pkl fails its CRC check (the file is corrupt)`);

  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: PyValue): PyValue => {
    const items = pid instanceof PyTuple ? pid.items : [];
    const [tag, cls, key, location, numel] = items;
    if (items.length !== 5 || tag !== 'storage') bad(`persistent id (${describePy(pid)}) is not a storage reference`);
    if (!(cls instanceof PyGlobal) || !STORAGES[cls.name])
      bad(`storage type ${describePy(cls)} is not a storage class`);
    if (typeof key !== 'string' || typeof location !== 'string' || !isCount(numel)) {
      bad(`storage reference (${describePy(key)}, ${describePy(location)}, ${describePy(numel)}) is malformed`);
    }
    const type = STORAGES[(cls as PyGlobal).name];
    const k = key as string;
    const known = storages.get(k);
    if (known) {
      if (known.cls !== type || known.numel !== numel) bad(`storage ${k} is referenced with two different types`);
      return new PyObject('storage', known);
    }
    const entry = zip.get(`${prefix}data/${k}`);
    if (!entry) bad(`storage ${k} has no ${prefix}data/${k} entry`);
    const data = zip.data(entry!);
    const expected = (numel as number) * type.bytes;
    if (data.byteLength !== expected) {
      bad(`storage ${k} holds ${data.byteLength} bytes but ${numel} ${type.dtype} elements need ${expected}`);
    }
    if (options.verifyCrc && crc32(data) !== entry!.crc32)
      bad(`storage ${k} fails its CRC check (the file is corrupt)`);
    const s: Storage = { key: k, cls: type, numel: numel as number, bytes: data };
    storages.set(k, s);
    return new PyObject('storage', s);
  };

  const counts = (v: PyValue, field: string): number[] => {
    if (!(v instanceof PyTuple) || !v.items.every(isCount))
      bad(`tensor ${field} (${describePy(v)}) is not a tuple of sizes`);
    return [...(v as PyTuple).items] as number[];
  };
  const reduce = (fn: PyGlobal, args: PyTuple): PyValue => {
    const a = args.items;
    if (fn.name === ORDERED_DICT) {
      if (a.length !== 0) bad('OrderedDict() called with arguments');
      return new PyDict(ORDERED_DICT);
    }
    if (fn.name === REBUILD_TENSOR) {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.length !== 6 && a.length !== 7) bad(`_rebuild_tensor_v2 with ${a.length} arguments`);
      const storage = a[0];
      if (!(storage instanceof PyObject) || storage.type !== 'storage') bad(`tensor storage is ${describePy(storage)}`);
      if (!isCount(a[1])) bad(`tensor storage offset is ${describePy(a[1])}`);
      const size = counts(a[2], 'size');
      const stride = counts(a[3], 'stride');
      if (stride.length !== size.length) bad(`tensor has ${size.length} sizes but ${stride.length} strides`);
      if (typeof a[4] !== 'boolean' || !(a[5] instanceof PyDict)) bad('tensor requires_grad/backward_hooks malformed');
      const ref: TensorRef = { storage: (storage as PyObject).value as Storage, offset: a[1] as number, size, stride };
      return new PyObject('tensor', ref);
    }
    if (fn.name === REBUILD_PARAMETER) {
      // (data, requires_grad, backward_hooks): a Parameter is its tensor here.
      if (a.length !== 3 || !(a[0] instanceof PyObject) || a[0].type !== 'tensor') bad('_rebuild_parameter malformed');
      return a[0];
    }
    return bad(`${fn.name} cannot be called`);
  };
  // state_dict() attaches `_metadata` (module versions) as OrderedDict attributes; they carry no weights.
  const build = (obj: PyValue, state: PyValue): PyValue => {
    if (obj instanceof PyDict && obj.className === ORDERED_DICT && state instanceof PyDict) return obj;
    return bad(`refusing BUILD of ${describePy(obj)} with ${describePy(state)}`);
  };

  const root = unpickle(
    pkl,
    { globals: GLOBALS, reduce, build, persistentLoad },
    `${what}: ${prefix}data.pkl`,
    options.limits ?? DEFAULT_PICKLE_LIMITS,
  );
  if (!(root instanceof PyDict)) return bad(`data.pkl holds ${describePy(root)}, not a state_dict`);

  const out = new Map<string, HostTensor>();
  let copied = 0;
  for (const [name, value] of root.map) {
    if (typeof name !== 'string') bad(`state_dict key ${describePy(name)} is not a string`);
    if (!(value instanceof PyObject) || value.type !== 'tensor') {
      bad(`state_dict entry "${name}" is ${describePy(value)}, not a tensor`);
    }
    const t = (value as PyObject).value as TensorRef;
    const tbad = (msg: string): never => bad(`tensor "${name}": ${msg}`);
    const cls = t.storage.cls;
    if (!cls.host) {
      if (cls.integer && options.skipIntegerTensors) continue;
      tbad(`dtype ${cls.dtype} is not supported (only float32, float16 and bfloat16)`);
    }
    const data = tensorBytes(t, tbad, bytes.byteLength - copied);
    if (data.buffer !== bytes.buffer) copied += data.byteLength;
    out.set(name as string, { dtype: cls.host!, shape: t.size, data });
  }
  return out;
}

/**
 * The tensor's bytes in row-major order: a view when its strides are contiguous, else a copy (at
 * most `copyBudget` bytes, so overlapping views cannot multiply the file's size in memory).
 */
function tensorBytes(t: TensorRef, bad: (msg: string) => never, copyBudget: number): Uint8Array {
  const { storage, offset, size, stride } = t;
  const es = storage.cls.bytes;
  let numel = 1;
  for (const d of size) numel *= d;
  if (numel === 0) return storage.bytes.subarray(0, 0);
  // Float products cannot wrap, so an absurd shape still compares as too large.
  if (numel > storage.numel) bad(`shape [${size}] needs ${numel} elements, its storage has ${storage.numel}`);
  let last = offset;
  for (let i = 0; i < size.length; i++) last += (size[i] - 1) * stride[i];
  if (last >= storage.numel) {
    bad(
      `offset ${offset}, shape [${size}], stride [${stride}] reach element ${last} of a ${storage.numel}-element storage`,
    );
  }
  let contiguous = true;
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) contiguous = false;
    expected *= size[i];
  }
  if (contiguous) return storage.bytes.subarray(offset * es, (offset + numel) * es);

  if (numel * es > copyBudget) bad('strided views copy more bytes than the file holds');
  const out = new Uint8Array(numel * es);
  const src = storage.bytes;
  const nd = size.length;
  const idx = new Array<number>(nd).fill(0);
  let from = offset;
  for (let n = 0; n < numel; n++) {
    for (let b = 0; b < es; b++) out[n * es + b] = src[from * es + b];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      from += stride[d];
      if (idx[d] < size[d]) break;
      from -= stride[d] * size[d];
      idx[d] = 0;
    }
  }
  return out;
}
