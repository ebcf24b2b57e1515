//! DPT for monocular depth (`DPTForDepthEstimation`), after Ranftl, Bochkovskiy and Koltun
//! 2021, "Vision Transformers for Dense Prediction": a ViT whose intermediate token maps
//! are reassembled into a four-level image pyramid, fused coarse to fine by residual
//! convolution units, and decoded by a small convolutional head. Only the pure-ViT
//! variant (`is_hybrid: false`, as `Intel/dpt-large`) is supported; tensor names are
//! those of the Hugging Face checkpoints, so a real `model.safetensors` loads unchanged.
//!
//! The output (`predicted_depth`, `[b, h, w]`) is what the checkpoint was trained to
//! produce; for the MiDaS-trained `Intel/dpt-*` models that is relative inverse depth
//! (larger = nearer), and the losses here compare maps in that space (see [`ssi_loss`]).
//!
//! Input sizes: the position embeddings are resized (bilinear, as transformers'
//! `_resize_pos_embed`) to any patch grid, and non-square grids run too (the neck is
//! given the grid, as in the original DPT code; transformers' own ViT path only accepts
//! square grids, its parity on non-square inputs is checked through its neck's
//! `patch_height`/`patch_width` arguments).
//!
//! Training: every op is differentiable (see `ops.rs`), so the same code fine-tunes the
//! model with [`ssi_loss`] (MiDaS' scale-and-shift-invariant MSE on inverse depth, for
//! relative depth as DPT predicts it) or [`l1_loss`] (plain L1, when the targets are in
//! the model's own units); [`inverse_depth`] turns a rendered depth map into targets and
//! a validity mask. Batch norm (only with `use_batch_norm_in_fusion_residual`) runs in
//! evaluation mode with frozen statistics. [`Config::frozen_patterns`] names the tensors
//! the depth output never reaches.
//!
//! Files: `config.rs` (the config and its checks), `processor.rs` (`DPTImageProcessor`),
//! `loss.rs` (losses); the modules are here. This is the model family behind ViperGPT's
//! `compute_depth`.

mod config;
mod loss;
mod processor;

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

use crate::ops::{self, LayerNorm, Linear};
use crate::weights;

use config::{resample_of, Resample};
pub use config::{Activation, Config, Readout};
pub use loss::{inverse_depth, l1_loss, ssi_loss, SSI_EPS};
pub use processor::ImageProcessor;

fn conv(vb: VarBuilder, i: usize, o: usize, k: usize, pad: usize, bias: bool) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: pad,
        ..Default::default()
    };
    if bias {
        candle_nn::conv2d(i, o, k, cfg, vb)
    } else {
        candle_nn::conv2d_no_bias(i, o, k, cfg, vb)
    }
}

/// ViT layer (`dpt.encoder.layer.N`): pre-norm attention and MLP, both residual.
#[derive(Clone, Debug)]
struct VitLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    intermediate: Linear,
    output: Linear,
    layernorm_before: LayerNorm,
    layernorm_after: LayerNorm,
    heads: usize,
    act: Activation,
}

impl VitLayer {
    fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (h, qkv) = (cfg.hidden_size, cfg.qkv_bias);
        let att = vb.pp("attention");
        Ok(Self {
            query: ops::linear(att.pp("attention").pp("query"), h, h, qkv)?,
            key: ops::linear(att.pp("attention").pp("key"), h, h, qkv)?,
            value: ops::linear(att.pp("attention").pp("value"), h, h, qkv)?,
            attn_out: ops::linear(att.pp("output").pp("dense"), h, h, true)?,
            intermediate: ops::linear(
                vb.pp("intermediate").pp("dense"),
                h,
                cfg.intermediate_size,
                true,
            )?,
            output: ops::linear(vb.pp("output").pp("dense"), cfg.intermediate_size, h, true)?,
            layernorm_before: LayerNorm::new(vb.pp("layernorm_before"), h, cfg.layer_norm_eps)?,
            layernorm_after: LayerNorm::new(vb.pp("layernorm_after"), h, cfg.layer_norm_eps)?,
            heads: cfg.num_attention_heads,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = x.dim(2)?;
        let d = h / self.heads;
        let y = self.layernorm_before.forward(x)?;
        let q = self.query.forward(&y)?;
        let k = self.key.forward(&y)?;
        let v = self.value.forward(&y)?;
        let a = ops::multi_head_attention(&q, &k, &v, None, self.heads, (d as f64).powf(-0.5))?;
        let x = (x + self.attn_out.forward(&a)?)?;
        let y = self.layernorm_after.forward(&x)?;
        let y = self.act.apply(&self.intermediate.forward(&y)?)?;
        x + self.output.forward(&y)?
    }
}

/// The ViT backbone (`dpt.embeddings`, `dpt.encoder`).
#[derive(Clone, Debug)]
struct Backbone {
    cls_token: Tensor,
    patch_weight: Tensor,
    patch_bias: Tensor,
    position_embeddings: Tensor,
    layers: Vec<VitLayer>,
    patch: usize,
    channels: usize,
}

impl Backbone {
    fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (h, p) = (cfg.hidden_size, cfg.patch_size);
        let emb = vb.pp("embeddings");
        let g = cfg.image_size / p;
        let randn = candle_nn::Init::Randn {
            mean: 0.,
            stdev: 0.02,
        };
        let proj = emb.pp("patch_embeddings").pp("projection");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| VitLayer::new(vb.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<Result<_>>()?;
        // Not used for depth (see `Config::frozen_patterns`), loaded for complete weights.
        LayerNorm::new(vb.pp("layernorm"), h, cfg.layer_norm_eps)?;
        Ok(Self {
            cls_token: emb.get_with_hints((1, 1, h), "cls_token", randn)?,
            patch_weight: proj.get_with_hints((h, cfg.num_channels, p, p), "weight", randn)?,
            patch_bias: proj.get_with_hints(h, "bias", candle_nn::Init::Const(0.0))?,
            position_embeddings: emb.get_with_hints(
                (1, g * g + 1, h),
                "position_embeddings",
                randn,
            )?,
            layers,
            patch: p,
            channels: cfg.num_channels,
        })
    }

    /// Position embeddings for a `gh x gw` grid: the CLS entry, then the patch grid
    /// resized bilinearly (align_corners=False) from the checkpoint's square grid.
    fn positions(&self, gh: usize, gw: usize) -> Result<Tensor> {
        let (_, n, h) = self.position_embeddings.dims3()?;
        let g0 = ((n - 1) as f64).sqrt().round() as usize;
        let cls = self.position_embeddings.narrow(1, 0, 1)?;
        let grid = self
            .position_embeddings
            .narrow(1, 1, n - 1)?
            .reshape((1, g0, g0, h))?
            .permute((0, 3, 1, 2))?;
        let grid = ops::interpolate_bilinear(&grid, gh, gw, false)?
            .permute((0, 2, 3, 1))?
            .reshape((1, gh * gw, h))?;
        Tensor::cat(&[&cls, &grid], 1)
    }

    /// Outputs of the layers in `keep` (sorted), each `[b, 1 + gh * gw, hidden]`.
    fn forward(&self, pixel_values: &Tensor, keep: &[usize]) -> Result<Vec<Tensor>> {
        let (b, c, hh, ww) = pixel_values.dims4()?;
        let p = self.patch;
        let (gh, gw) = (hh / p, ww / p);
        if c != self.channels || gh == 0 || gw == 0 {
            candle_core::bail!(
                "pixel_values: expected [batch, {}, h >= {p}, w >= {p}], got {:?}",
                self.channels,
                pixel_values.dims()
            );
        }
        let hidden = self.patch_bias.dim(0)?;
        // Like PyTorch's stride-p convolution, rows and columns past the last whole
        // patch are dropped; the convolution itself is a matmul over flattened patches.
        let x = pixel_values
            .to_dtype(self.patch_weight.dtype())?
            .narrow(2, 0, gh * p)?
            .narrow(3, 0, gw * p)?;
        let patches = x
            .reshape((b, c, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((b, gh * gw, c * p * p))?;
        let w = self.patch_weight.reshape((hidden, c * p * p))?;
        let emb = patches
            .broadcast_matmul(&w.t()?)?
            .broadcast_add(&self.patch_bias)?;
        let cls = self.cls_token.broadcast_as((b, 1, hidden))?;
        let mut x = Tensor::cat(&[&cls, &emb], 1)?.broadcast_add(&self.positions(gh, gw)?)?;
        let mut out = Vec::with_capacity(keep.len());
        let last = keep.last().copied().unwrap_or(0);
        for (i, layer) in self.layers.iter().enumerate().take(last + 1) {
            x = layer.forward(&x)?;
            if keep.contains(&i) {
                out.push(x.clone());
            }
        }
        Ok(out)
    }
}

/// One reassemble stage (`neck.reassemble_stage.{layers,readout_projects}.N`): tokens
/// to a feature map, 1x1 projection, then up/down sampling.
#[derive(Clone, Debug)]
struct Reassemble {
    readout: Option<Linear>,
    projection: Conv2d,
    up: Option<(Tensor, Tensor)>,
    down: Option<(Conv2d, usize)>,
    readout_type: Readout,
    act: Activation,
}

impl Reassemble {
    fn new(vb: VarBuilder, cfg: &Config, i: usize) -> Result<Self> {
        let (h, ch) = (cfg.hidden_size, cfg.neck_hidden_sizes[i]);
        let lv = vb.pp("layers").pp(i);
        let readout = match cfg.readout_type {
            Readout::Project => Some(ops::linear(
                vb.pp("readout_projects").pp(i).pp(0),
                2 * h,
                h,
                true,
            )?),
            _ => None,
        };
        let factor = resample_of(cfg.reassemble_factors[i]).map_err(candle_core::Error::msg)?;
        let (mut up, mut down) = (None, None);
        match factor {
            Resample::Up(k) => {
                let rv = lv.pp("resize");
                let init = candle_nn::init::DEFAULT_KAIMING_NORMAL;
                up = Some((
                    rv.get_with_hints((ch, ch, k, k), "weight", init)?,
                    rv.get_with_hints(ch, "bias", candle_nn::Init::Const(0.0))?,
                ));
            }
            Resample::Same => {}
            Resample::Down(s) => {
                let c = Conv2dConfig {
                    padding: 1,
                    stride: s,
                    ..Default::default()
                };
                down = Some((candle_nn::conv2d(ch, ch, 3, c, lv.pp("resize"))?, s));
            }
        }
        Ok(Self {
            readout,
            projection: conv(lv.pp("projection"), h, ch, 1, 0, true)?,
            up,
            down,
            readout_type: cfg.readout_type,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, gh: usize, gw: usize) -> Result<Tensor> {
        let (b, n, h) = x.dims3()?;
        let cls = x.narrow(1, 0, 1)?;
        let tokens = x.narrow(1, 1, n - 1)?;
        let tokens = match (self.readout_type, &self.readout) {
            (Readout::Project, Some(lin)) => {
                let both = Tensor::cat(&[&tokens, &cls.broadcast_as((b, n - 1, h))?], 2)?;
                self.act.apply(&lin.forward(&both)?)?
            }
            (Readout::Add, _) => tokens.broadcast_add(&cls)?,
            _ => tokens,
        };
        let map = tokens.transpose(1, 2)?.reshape((b, h, gh, gw))?;
        let map = self.projection.forward(&map)?;
        match (&self.up, &self.down) {
            (Some((w, bias)), _) => ops::conv_transpose2d_disjoint(&map, w, Some(bias)),
            (_, Some((d, s))) => ops::conv2d_strided(&map, d.weight(), d.bias(), 1, *s),
            _ => Ok(map),
        }
    }
}

/// `BatchNorm2d` with frozen running statistics.
#[derive(Clone, Debug)]
struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl BatchNorm {
    fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        let k = candle_nn::Init::Const;
        Ok(Self {
            weight: vb.get_with_hints(c, "weight", k(1.0))?,
            bias: vb.get_with_hints(c, "bias", k(0.0))?,
            mean: vb.get_with_hints(c, "running_mean", k(0.0))?,
            var: vb.get_with_hints(c, "running_var", k(1.0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::batch_norm_eval(x, &self.weight, &self.bias, &self.mean, &self.var, 1e-5)
    }
}

/// Pre-activation residual unit: `x + conv2(relu(conv1(relu(x))))`, optional batch norms.
#[derive(Clone, Debug)]
struct ResidualUnit {
    conv1: Conv2d,
    conv2: Conv2d,
    bn: Option<(BatchNorm, BatchNorm)>,
}

impl ResidualUnit {
    fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (f, bias) = (cfg.fusion_hidden_size, cfg.fusion_bias());
        let bn = if cfg.use_batch_norm_in_fusion_residual {
            Some((
                BatchNorm::new(vb.pp("batch_norm1"), f)?,
                BatchNorm::new(vb.pp("batch_norm2"), f)?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv(vb.pp("convolution1"), f, f, 3, 1, bias)?,
            conv2: conv(vb.pp("convolution2"), f, f, 3, 1, bias)?,
            bn,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.conv1.forward(&x.relu()?)?;
        if let Some((bn1, _)) = &self.bn {
            y = bn1.forward(&y)?;
        }
        y = self.conv2.forward(&y.relu()?)?;
        if let Some((_, bn2)) = &self.bn {
            y = bn2.forward(&y)?;
        }
        x + y
    }
}

/// Fusion layer (`neck.fusion_stage.layers.N`).
#[derive(Clone, Debug)]
struct Fusion {
    residual_layer1: Option<ResidualUnit>,
    residual_layer2: ResidualUnit,
    projection: Conv2d,
}

impl Fusion {
    fn new(vb: VarBuilder, cfg: &Config, first: bool) -> Result<Self> {
        let r1 = ResidualUnit::new(vb.pp("residual_layer1"), cfg)?;
        let f = cfg.fusion_hidden_size;
        Ok(Self {
            // The first layer has no residual input; its unit is only loaded.
            residual_layer1: (!first).then_some(r1),
            residual_layer2: ResidualUnit::new(vb.pp("residual_layer2"), cfg)?,
            projection: conv(vb.pp("projection"), f, f, 1, 0, true)?,
        })
    }

    fn forward(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let mut x = x.clone();
        if let (Some(r), Some(unit)) = (residual, &self.residual_layer1) {
            let (_, _, h, w) = x.dims4()?;
            let (_, _, rh, rw) = r.dims4()?;
            let r = if (rh, rw) != (h, w) {
                ops::interpolate_bilinear(r, h, w, false)?
            } else {
                r.clone()
            };
            x = (x + unit.forward(&r)?)?;
        }
        let x = self.residual_layer2.forward(&x)?;
        let (_, _, h, w) = x.dims4()?;
        let x = ops::interpolate_bilinear(&x, 2 * h, 2 * w, true)?;
        self.projection.forward(&x)
    }
}

/// The depth head (`head.head.{0,2,4}`, optional `head.projection`).
#[derive(Clone, Debug)]
struct Head {
    projection: Option<Conv2d>,
    conv0: Conv2d,
    conv2: Conv2d,
    conv4: Conv2d,
}

impl Head {
    fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let f = cfg.fusion_hidden_size;
        let hv = vb.pp("head");
        Ok(Self {
            projection: if cfg.add_projection {
                Some(conv(vb.pp("projection"), 256, 256, 3, 1, true)?)
            } else {
                None
            },
            conv0: conv(hv.pp(0), f, f / 2, 3, 1, true)?,
            conv2: conv(hv.pp(2), f / 2, 32, 3, 1, true)?,
            conv4: conv(hv.pp(4), 32, 1, 1, 0, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.projection {
            Some(p) => p.forward(x)?.relu()?,
            None => x.clone(),
        };
        let x = self.conv0.forward(&x)?;
        let (_, _, h, w) = x.dims4()?;
        let x = ops::interpolate_bilinear(&x, 2 * h, 2 * w, true)?;
        let x = self.conv2.forward(&x)?.relu()?;
        self.conv4.forward(&x)?.relu()?.squeeze(1)
    }
}

/// Intermediate states of a forward pass, for parity checks and inspection.
#[derive(Clone, Debug)]
pub struct DptOutput {
    /// `[b, h, w]`, as transformers' `predicted_depth`.
    pub predicted_depth: Tensor,
    /// Outputs of the encoder layers named by `backbone_out_indices`, `[b, 1 + n, hidden]`.
    pub backbone_hidden_states: Vec<Tensor>,
    /// Fusion-stage outputs, coarse to fine, `[b, fusion_hidden_size, h_i, w_i]`.
    pub fusion_hidden_states: Vec<Tensor>,
}

/// `DPTForDepthEstimation` (pure ViT backbone).
#[derive(Clone, Debug)]
pub struct Dpt {
    backbone: Backbone,
    reassemble: Vec<Reassemble>,
    convs: Vec<Conv2d>,
    fusion: Vec<Fusion>,
    head: Head,
    out_layers: Vec<usize>,
    head_index: usize,
    patch: usize,
    config: Config,
}

impl Dpt {
    /// Builds the model from `vb` (checkpoint- or `VarMap`-backed).
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        cfg.validate(Path::new("<config>"))
            .map_err(candle_core::Error::wrap)?;
        let neck = vb.pp("neck");
        let n = cfg.neck_hidden_sizes.len();
        let f = cfg.fusion_hidden_size;
        let reassemble = (0..n)
            .map(|i| Reassemble::new(neck.pp("reassemble_stage"), cfg, i))
            .collect::<Result<_>>()?;
        let convs = cfg
            .neck_hidden_sizes
            .iter()
            .enumerate()
            .map(|(i, &c)| conv(neck.pp("convs").pp(i), c, f, 3, 1, false))
            .collect::<Result<_>>()?;
        let fusion = (0..n)
            .map(|i| Fusion::new(neck.pp("fusion_stage").pp("layers").pp(i), cfg, i == 0))
            .collect::<Result<_>>()?;
        Ok(Self {
            backbone: Backbone::new(vb.pp("dpt"), cfg)?,
            reassemble,
            convs,
            fusion,
            head: Head::new(vb.pp("head"), cfg)?,
            out_layers: cfg.out_layers(),
            head_index: cfg
                .head_index()
                .ok_or_else(|| candle_core::Error::msg("head_in_index out of range"))?,
            patch: cfg.patch_size,
            config: cfg.clone(),
        })
    }

    /// Loads `config.json` and `model.safetensors` from a checkpoint directory.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> anyhow::Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let vb = weights::var_builder(&[dir.join("model.safetensors")], dtype, device)?;
        Ok(Self::new(vb, &cfg)?)
    }

    /// The config the model was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `predicted_depth` `[b, h, w]` for `pixel_values` `[b, 3, H, W]` (normalised as
    /// [`ImageProcessor`] does; any size of at least one patch, positions are resized).
    /// The map is `16 / patch_size` times the input size (the input size for patch 16).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_states(pixel_values)?.predicted_depth)
    }

    /// The full forward pass with its intermediate states.
    pub fn forward_with_states(&self, pixel_values: &Tensor) -> Result<DptOutput> {
        let (_, _, h, w) = pixel_values.dims4()?;
        let (gh, gw) = (h / self.patch, w / self.patch);
        let states = self.backbone.forward(pixel_values, &self.out_layers)?;
        let mut features = Vec::with_capacity(states.len());
        for ((s, r), c) in states.iter().zip(&self.reassemble).zip(&self.convs) {
            features.push(c.forward(&r.forward(s, gh, gw)?)?);
        }
        let mut fused: Vec<Tensor> = Vec::with_capacity(features.len());
        for (layer, feat) in self.fusion.iter().zip(features.iter().rev()) {
            let next = match fused.last() {
                None => layer.forward(feat, None)?,
                Some(prev) => layer.forward(prev, Some(feat))?,
            };
            fused.push(next);
        }
        let predicted_depth = self.head.forward(&fused[self.head_index])?;
        Ok(DptOutput {
            predicted_depth,
            backbone_hidden_states: states,
            fusion_hidden_states: fused,
        })
    }
}
