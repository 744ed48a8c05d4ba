import { CheckpointFormatError } from '../errors.ts';

/**
 * A minimal, strict reader for the ZIP archives torch.save writes (PyTorchStreamWriter over miniz):
 * stored (uncompressed) entries, located through the central directory, with ZIP64 records for
 * archives or entries past 4 GiB. Every offset and length is checked against the buffer before it is
 * used, and every loop is bounded by a count that was itself checked against the bytes available.
 * Entry data are views into the buffer, never copies.
 */

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is refused when the data are read. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** Where the entry's bytes begin (after the local header, its name and its extra field). */
  dataOffset: number;
}

export interface ZipArchive {
  /** In central-directory order. */
  readonly entries: readonly ZipEntry[];
  get(name: string): ZipEntry | undefined;
  /** The entry's bytes as a view into the archive; throws for compressed entries. */
  data(entry: ZipEntry): Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const FLAG_ENCRYPTED = 0x1;
const FLAG_DATA_DESCRIPTOR = 0x8;
const ZIP64_EXTRA_ID = 0x0001;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as ZIP uses it) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Opens a ZIP archive held in memory. `what` names the file in error messages. */
export function openZip(bytes: Uint8Array, what = 'zip archive'): ZipArchive {
  const bad = (msg: string): never => {
    throw new CheckpointFormatError(`${what}: ${msg}`);
  };
  const len = bytes.byteLength;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, len);
  const u16 = (at: number): number => dv.getUint16(at, true);
  const u32 = (at: number): number => dv.getUint32(at, true);
  // Sizes beyond 2^53 cannot describe bytes we hold, so they are refused rather than rounded.
  const u64 = (at: number, field: string): number => {
    const v = dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`${field} ${v} is impossibly large`);
    return Number(v);
  };

  if (len < EOCD_SIZE) bad(`only ${len} bytes, too short for a zip archive`);
  // The end record sits in the last 22 + 65535 bytes (its comment is at most 65535 bytes). Searching
  // backwards and requiring the comment to reach exactly to the end skips signatures inside comments.
  let eocd = -1;
  for (let at = len - EOCD_SIZE; at >= Math.max(0, len - EOCD_SIZE - U16_MAX); at--) {
    if (u32(at) === SIG_EOCD && at + EOCD_SIZE + u16(at + 20) === len) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) bad('no end-of-central-directory record (truncated, or not a zip archive)');

  const diskNo = u16(eocd + 4);
  const cdDisk = u16(eocd + 6);
  let diskEntries = u16(eocd + 8);
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  // Where the central directory must end: the ZIP64 end record when there is one, else the end record.
  let cdLimit = eocd;

  if (eocd >= LOCATOR_SIZE && u32(eocd - LOCATOR_SIZE) === SIG_ZIP64_LOCATOR) {
    const loc = eocd - LOCATOR_SIZE;
    if (u32(loc + 4) !== 0 || u32(loc + 16) !== 1) bad('multi-disk ZIP64 archives are not supported');
    const z = u64(loc + 8, 'ZIP64 end record offset');
    if (z + ZIP64_EOCD_SIZE > loc) bad(`ZIP64 end record at ${z} overlaps the records after it`);
    if (u32(z) !== SIG_ZIP64_EOCD) bad(`no ZIP64 end record at offset ${z}`);
    const recordSize = u64(z + 4, 'ZIP64 end record size');
    if (z + 12 + recordSize !== loc) {
      bad(`ZIP64 end record size ${recordSize} is inconsistent with its position`);
    }
    if (u32(z + 16) !== 0 || u32(z + 20) !== 0) bad('multi-disk ZIP64 archives are not supported');
    const z64 = {
      diskEntries: u64(z + 24, 'entry count'),
      count: u64(z + 32, 'entry count'),
      cdSize: u64(z + 40, 'central directory size'),
      cdOffset: u64(z + 48, 'central directory offset'),
    };
    // A 16/32-bit field holds either the saturated marker or the same value as its 64-bit twin.
    const agree = (small: number, big: number, max: number, field: string): number => {
      if (small !== max && small !== big) bad(`${field} is ${small} in the end record but ${big} in the ZIP64 one`);
      return big;
    };
    diskEntries = agree(diskEntries, z64.diskEntries, U16_MAX, 'entry count');
    count = agree(count, z64.count, U16_MAX, 'entry count');
    cdSize = agree(cdSize, z64.cdSize, U32_MAX, 'central directory size');
    cdOffset = agree(cdOffset, z64.cdOffset, U32_MAX, 'central directory offset');
    cdLimit = z;
  } else if (diskNo !== 0 || cdDisk !== 0) {
    bad('multi-disk archives are not supported');
  }
  if (diskEntries !== count) bad('multi-disk archives are not supported');
  if (cdOffset + cdSize !== cdLimit) {
    bad(`central directory [${cdOffset}, +${cdSize}) does not end where the end record begins (${cdLimit})`);
  }
  if (count > Math.floor(cdSize / CENTRAL_SIZE)) bad(`${count} entries cannot fit in a ${cdSize}-byte directory`);

  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_SIZE > cdLimit) bad(`central directory entry ${i} runs past the directory`);
    if (u32(at) !== SIG_CENTRAL) bad(`central directory entry ${i} at ${at} has a bad signature`);
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    let compressedSize = u32(at + 20);
    let size = u32(at + 24);
    const nameLen = u16(at + 28);
    const extraLen = u16(at + 30);
    const commentLen = u16(at + 32);
    let disk = u16(at + 34);
    let localHeaderOffset = u32(at + 42);
    const end = at + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (end > cdLimit) bad(`central directory entry ${i} runs past the directory`);
    const nameBytes = bytes.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLen);
    let name = '';
    try {
      name = utf8.decode(nameBytes);
    } catch {
      bad(`central directory entry ${i} has a name that is not UTF-8`);
    }
    const ebad = (msg: string): never => bad(`entry "${name}": ${msg}`);

    // ZIP64 extra: 64-bit values for exactly those fields saturated above, in this order.
    let x = at + CENTRAL_SIZE + nameLen;
    const xEnd = x + extraLen;
    let sawZip64 = false;
    while (x < xEnd) {
      if (x + 4 > xEnd) ebad('extra field header runs past the extra data');
      const id = u16(x);
      const fieldLen = u16(x + 2);
      const body = x + 4;
      if (body + fieldLen > xEnd) ebad(`extra field 0x${id.toString(16)} runs past the extra data`);
      if (id === ZIP64_EXTRA_ID) {
        if (sawZip64) ebad('two ZIP64 extra fields');
        sawZip64 = true;
        let p = body;
        const take = (field: string): number => {
          if (p + 8 > body + fieldLen) ebad(`ZIP64 extra field lacks the ${field}`);
          const v = u64(p, `${name}: ${field}`);
          p += 8;
          return v;
        };
        if (size === U32_MAX) size = take('size');
        if (compressedSize === U32_MAX) compressedSize = take('compressed size');
        if (localHeaderOffset === U32_MAX) localHeaderOffset = take('local header offset');
        if (disk === U16_MAX) {
          if (p + 4 > body + fieldLen) ebad('ZIP64 extra field lacks the disk number');
          disk = u32(p);
        }
      }
      x = body + fieldLen;
    }
    if (disk !== 0) ebad('lives on another disk');
    if (flags & FLAG_ENCRYPTED) ebad('is encrypted');
    if (byName.has(name)) ebad('appears twice in the central directory');

    // The local header repeats the name; its own extra field may differ (torch pads it for alignment).
    const lh = localHeaderOffset;
    if (lh + LOCAL_SIZE > cdOffset) ebad(`local header offset ${lh} lies outside the data area`);
    if (u32(lh) !== SIG_LOCAL) ebad(`no local header at offset ${lh}`);
    const localNameLen = u16(lh + 26);
    const localExtraLen = u16(lh + 28);
    const dataOffset = lh + LOCAL_SIZE + localNameLen + localExtraLen;
    if (localNameLen !== nameLen || dataOffset > cdOffset) ebad('local header disagrees with the central directory');
    for (let k = 0; k < nameLen; k++) {
      if (bytes[lh + LOCAL_SIZE + k] !== nameBytes[k]) ebad('local header names a different file');
    }
    if (!(flags & FLAG_DATA_DESCRIPTOR)) {
      const localComp = u32(lh + 18);
      if (localComp !== U32_MAX && localComp !== compressedSize % 2 ** 32) {
        ebad(`local header says ${localComp} bytes, the central directory ${compressedSize}`);
      }
    }
    if (dataOffset + compressedSize > cdOffset) {
      ebad(`data [${dataOffset}, +${compressedSize}) run into the central directory at ${cdOffset}`);
    }
    if (method === 0 && compressedSize !== size) ebad(`stored entry has ${compressedSize} bytes but claims ${size}`);

    const entry: ZipEntry = { name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset, dataOffset };
    entries.push(entry);
    byName.set(name, entry);
    at = end;
  }
  if (at !== cdOffset + cdSize) bad(`${cdOffset + cdSize - at} stray bytes at the end of the central directory`);

  return {
    entries,
    get: (name) => byName.get(name),
    data: (entry) => {
      if (entry.method !== 0) {
        const how = entry.method === 8 ? 'deflate-compressed' : `compressed with method ${entry.method}`;
        bad(
          `entry "${entry.name}" is ${how}; only stored entries (as torch.save writes them) are supported. ` +
            'Re-save the checkpoint with torch.save, or convert it to safetensors.',
        );
      }
      return bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
    },
  };
}
