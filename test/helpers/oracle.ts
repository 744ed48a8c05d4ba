import path from 'node:path';

/**
 * The shared oracle folder: `../shared/oracle` beside the checkout (where CI lays it), or
 * SKIPDECODE_ORACLE_DIR for a checkout elsewhere. Tests that need it fail when it is missing.
 */
export const ORACLE_ROOT = process.env.SKIPDECODE_ORACLE_DIR
  ? path.resolve(process.env.SKIPDECODE_ORACLE_DIR)
  : path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'oracle');

/** The Llama-family cases: `../shared/oracle-llama` beside the checkout, or SKIPDECODE_ORACLE_LLAMA_DIR. */
export const LLAMA_ORACLE_ROOT = process.env.SKIPDECODE_ORACLE_LLAMA_DIR
  ? path.resolve(process.env.SKIPDECODE_ORACLE_LLAMA_DIR)
  : path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'oracle-llama');
