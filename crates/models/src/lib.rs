//! Tensor code: BLIP VQA, OWL-ViT, CLIP, differentiable ops and the training core.
