/** The sampling settings the benchmarks use: the chat page's kind, every stage on. */
export const SAMPLING = { temperature: 0.8, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 1 };
