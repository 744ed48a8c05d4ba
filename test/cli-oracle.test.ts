import { ORACLE_ROOT } from './helpers/oracle.ts';
import { oracleSuite } from './helpers/oracle-cli.ts';

/** The shared oracle: an independent float64 PyTorch implementation of Hugging Face's OPT. */
oracleSuite('shared oracle through the CLI', ORACLE_ROOT);
