// The step uniform, bound by every kernel at @group(0) @binding(0) and written once per step by the
// session (src/gpu/kernel.ts fillStepWords): batch sequences, tokens per sequence this step, the cache
// position of this step's first token, and the session's cache length.
// Kernels do not declare it: the shader loader (src/gpu/shaders.ts) puts this prelude into every
// shader that uses `Step` as a type, after any `enable`/`requires`/`diagnostic` directives.

struct Step { batch: u32, tokens: u32, past: u32, max_seq: u32 }
