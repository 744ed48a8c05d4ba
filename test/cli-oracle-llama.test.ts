import { LLAMA_ORACLE_ROOT } from './helpers/oracle.ts';
import { oracleSuite } from './helpers/oracle-cli.ts';

/**
 * The Llama-family oracle: an independent float64 implementation of Hugging Face's
 * LlamaForCausalLM (RMSNorm, rotary embeddings, grouped-query attention, gated MLP), full depth and
 * under a SkipDecode schedule, through the CLI.
 */
oracleSuite('Llama-family oracle through the CLI', LLAMA_ORACLE_ROOT);
