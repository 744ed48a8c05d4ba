/**
 * Writing a quantized model's stored files (src/model/quantized-layout.ts) to a folder, part by part
 * (a shard may exceed what one typed array holds). Node only.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { safetensorsParts, type Entry, type StoredFile } from './quantized-layout.ts';

export function writeStoredFile(dir: string, f: StoredFile): void {
  const fd = openSync(path.join(dir, f.name), 'w');
  try {
    for (const part of f.parts) writeSync(fd, part);
  } finally {
    closeSync(fd);
  }
}

export function writeStoredFiles(dir: string, files: StoredFile[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeStoredFile(dir, f);
}

/** Writes one safetensors file from its stored tensors. */
export function writeSafetensors(file: string, list: Entry[]): void {
  writeStoredFile(path.dirname(file), { name: path.basename(file), parts: safetensorsParts(list) });
}
