//! ViperGPT-style Python programs in a sandboxed interpreter with batched model calls.
