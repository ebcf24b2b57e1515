//! Program generation: prompts, OpenAI-compatible, local, embedded and gold generators, cache.
