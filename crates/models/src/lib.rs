//! Tensor code: BLIP VQA, OWL-ViT, CLIP, differentiable ops and the training core.

pub mod blip;
pub mod clip;
pub mod dpt;
pub mod llama;
pub mod ops;
pub mod owlvit;
pub mod preprocess;
pub mod program_lm;
pub mod tokenize;
pub mod train;
pub mod weights;
