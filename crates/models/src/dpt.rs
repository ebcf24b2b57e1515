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
//! Every op is differentiable (see `ops.rs`), so the same code fine-tunes the model.

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};
use image::RgbImage;
use serde::Deserialize;
use serde_json::Value;

use crate::ops::{self, LayerNorm};
use crate::preprocess;
use crate::weights::{self, WeightsError};

/// Activation named by `hidden_act` (ViT MLP and the readout projection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Activation {
    #[serde(rename = "gelu")]
    Gelu,
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gelu => ops::gelu_erf(x),
            Self::GeluTanh => x.gelu(),
            Self::QuickGelu => ops::quick_gelu(x),
            Self::Relu => x.relu(),
        }
    }
}

/// How the CLS token enters the reassembled maps (`readout_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    Ignore,
    Add,
    Project,
}

/// An int or a list of equal ints (`image_size`, `patch_size` in HF configs).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum IntOrList {
    Int(usize),
    List(Vec<usize>),
}

/// `DPTConfig`; absent or `null` fields take transformers' defaults (dpt-large shapes).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    #[serde(deserialize_with = "square")]
    pub image_size: usize,
    #[serde(deserialize_with = "square")]
    pub patch_size: usize,
    pub num_channels: usize,
    pub is_hybrid: bool,
    pub qkv_bias: bool,
    pub backbone_out_indices: Vec<usize>,
    pub readout_type: Readout,
    pub reassemble_factors: Vec<f64>,
    pub neck_hidden_sizes: Vec<usize>,
    pub fusion_hidden_size: usize,
    pub head_in_index: i64,
    pub use_batch_norm_in_fusion_residual: bool,
    pub use_bias_in_fusion_residual: Option<bool>,
    pub add_projection: bool,
    backbone_config: Option<Value>,
    backbone: Option<Value>,
}

fn square<'de, De: serde::Deserializer<'de>>(d: De) -> std::result::Result<usize, De::Error> {
    match IntOrList::deserialize(d)? {
        IntOrList::Int(i) => Ok(i),
        IntOrList::List(l) if l.len() == 2 && l[0] == l[1] => Ok(l[0]),
        IntOrList::List(l) => Err(serde::de::Error::custom(format!(
            "only square sizes are supported, got {l:?}"
        ))),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-12,
            image_size: 384,
            patch_size: 16,
            num_channels: 3,
            is_hybrid: false,
            qkv_bias: true,
            backbone_out_indices: vec![2, 5, 8, 11],
            readout_type: Readout::Project,
            reassemble_factors: vec![4.0, 2.0, 1.0, 0.5],
            neck_hidden_sizes: vec![96, 192, 384, 768],
            fusion_hidden_size: 256,
            head_in_index: -1,
            use_batch_norm_in_fusion_residual: false,
            use_bias_in_fusion_residual: None,
            add_projection: false,
            backbone_config: None,
            backbone: None,
        }
    }
}

/// How a reassemble stage changes the resolution of the token map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resample {
    Up(usize),
    Same,
    Down(usize),
}

impl Config {
    /// Reads and checks a HF `DPTForDepthEstimation` `config.json`.
    pub fn from_file(path: &Path) -> std::result::Result<Self, WeightsError> {
        let mut raw: Value = weights::load_config(path)?;
        if let Some(obj) = raw.as_object_mut() {
            // transformers writes `null` for fields it derives; those take the defaults.
            obj.retain(|_, v| !v.is_null());
        }
        let cfg: Self = weights::parse_config(&raw.to_string(), path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> std::result::Result<(), WeightsError> {
        let err = |field: &str, msg: String| Err(weights::config_error(path, field, msg));
        if self.is_hybrid {
            return err(
                "is_hybrid",
                "DPT-Hybrid (BiT convolutional backbone) is not supported; only the pure-ViT DPT is"
                    .into(),
            );
        }
        if self.backbone_config.is_some() || self.backbone.is_some() {
            return err(
                "backbone_config",
                "external backbones are not supported; only DPT's own ViT is".into(),
            );
        }
        let heads = self.num_attention_heads;
        if heads == 0 || !self.hidden_size.is_multiple_of(heads) {
            return err(
                "num_attention_heads",
                format!(
                    "{heads} heads do not divide hidden_size {}",
                    self.hidden_size
                ),
            );
        }
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return err(
                "patch_size",
                format!(
                    "patch_size {} does not divide image_size {}",
                    self.patch_size, self.image_size
                ),
            );
        }
        let n = self.neck_hidden_sizes.len();
        if n == 0 {
            return err("neck_hidden_sizes", "must not be empty".into());
        }
        if self.reassemble_factors.len() != n {
            return err(
                "reassemble_factors",
                format!(
                    "{} factors for {n} neck_hidden_sizes",
                    self.reassemble_factors.len()
                ),
            );
        }
        let layers = self.out_layers();
        if layers.len() != n {
            return err(
                "backbone_out_indices",
                format!(
                    "{:?} selects {} distinct layers, but neck_hidden_sizes has {n} entries",
                    self.backbone_out_indices,
                    layers.len()
                ),
            );
        }
        if let Some(&l) = layers.iter().find(|&&l| l >= self.num_hidden_layers) {
            return err(
                "backbone_out_indices",
                format!(
                    "layer {l} does not exist ({} layers)",
                    self.num_hidden_layers
                ),
            );
        }
        for (i, &f) in self.reassemble_factors.iter().enumerate() {
            if let Err(m) = resample_of(f) {
                return err(&format!("reassemble_factors[{i}]"), m);
            }
        }
        if self.head_index().is_none() {
            return err(
                "head_in_index",
                format!(
                    "{} is out of range for {n} fusion stages",
                    self.head_in_index
                ),
            );
        }
        if self.add_projection && self.fusion_hidden_size != 256 {
            return err(
                "add_projection",
                format!(
                    "the head projection is 256 -> 256 channels in transformers, but fusion_hidden_size is {}",
                    self.fusion_hidden_size
                ),
            );
        }
        if self.fusion_hidden_size < 2 {
            return err("fusion_hidden_size", "must be at least 2".into());
        }
        Ok(())
    }

    /// Encoder layers whose outputs feed the neck, in layer order (transformers keeps
    /// hidden state `i` when `i` is in `backbone_out_indices`).
    pub fn out_layers(&self) -> Vec<usize> {
        let mut l = self.backbone_out_indices.clone();
        l.sort_unstable();
        l.dedup();
        l
    }

    fn head_index(&self) -> Option<usize> {
        let n = self.neck_hidden_sizes.len() as i64;
        let i = if self.head_in_index < 0 {
            n + self.head_in_index
        } else {
            self.head_in_index
        };
        (0..n).contains(&i).then_some(i as usize)
    }

    /// Whether the fusion residual convolutions have a bias (transformers: explicit
    /// setting, else "no batch norm").
    fn fusion_bias(&self) -> bool {
        self.use_bias_in_fusion_residual
            .unwrap_or(!self.use_batch_norm_in_fusion_residual)
    }

    /// Glob patterns (for `train::ParamFilter`) of checkpoint tensors that get no
    /// gradient from the depth output: batch-norm running statistics, the backbone's
    /// final layer norm (only `DPTModel.last_hidden_state` uses it), the first fusion
    /// layer's `residual_layer1` (it never has a residual input), and encoder layers after
    /// the last one in `backbone_out_indices`. They are loaded all the same, so that saved
    /// weights are complete checkpoints.
    pub fn frozen_patterns(&self) -> Vec<String> {
        let mut p = vec![
            "*.running_mean".to_string(),
            "*.running_var".to_string(),
            "dpt.layernorm.*".to_string(),
            "neck.fusion_stage.layers.0.residual_layer1.*".to_string(),
        ];
        let last = self.out_layers().last().copied().unwrap_or(0);
        p.extend((last + 1..self.num_hidden_layers).map(|l| format!("dpt.encoder.layer.{l}.*")));
        p
    }
}

fn resample_of(f: f64) -> std::result::Result<Resample, String> {
    if !(f > 0.0 && f.is_finite()) {
        Err(format!("factor {f} must be positive"))
    } else if f > 1.0 {
        if f.fract() != 0.0 {
            Err(format!(
                "upsampling factor {f} must be an integer (it is a transposed-conv kernel)"
            ))
        } else {
            Ok(Resample::Up(f as usize))
        }
    } else if f == 1.0 {
        Ok(Resample::Same)
    } else {
        // transformers: stride int(1 / factor).
        Ok(Resample::Down((1.0 / f) as usize))
    }
}

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
        let (b, n, h) = x.dims3()?;
        let d = h / self.heads;
        let y = self.layernorm_before.forward(x)?;
        let split = |t: Tensor| t.reshape((b, n, self.heads, d))?.transpose(1, 2);
        let q = split(self.query.forward(&y)?)?;
        let k = split(self.key.forward(&y)?)?;
        let v = split(self.value.forward(&y)?)?;
        let a = ops::attention(&q, &k, &v, None, (d as f64).powf(-0.5))?;
        let a = a.transpose(1, 2)?.reshape((b, n, h))?;
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
}

impl Dpt {
    /// Builds the model from `vb` (checkpoint- or `VarMap`-backed) for a validated config.
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
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
        })
    }

    /// Loads `config.json` and `model.safetensors` from a checkpoint directory.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> anyhow::Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let vb = weights::var_builder(&[dir.join("model.safetensors")], dtype, device)?;
        Ok(Self::new(vb, &cfg)?)
    }

    /// `predicted_depth` `[b, h, w]` for `pixel_values` `[b, 3, H, W]`.
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

fn check_same(what: &str, pred: &Tensor, other: &Tensor) -> Result<()> {
    if pred.dims() != other.dims() {
        candle_core::bail!(
            "{what}: shape {:?} does not match predicted_depth {:?}",
            other.dims(),
            pred.dims()
        );
    }
    Ok(())
}

/// Added to the determinant of the per-image least-squares system of [`ssi_loss`], so
/// that a constant prediction (e.g. an all-zero map after the final ReLU) stays finite.
pub const SSI_EPS: f64 = 1e-6;

/// Scale-and-shift-invariant MSE (MiDaS, Ranftl et al. 2020, without its gradient-matching
/// term): per image, the scale `s` and shift `t` minimising `Σ m (s·p + t − y)²` are
/// solved in closed form (and differentiated through), then
/// `loss = Σ_images Σ m (s·p + t − y)² / (2 Σ m)`.
///
/// `pred`, `target` and the 0/1 `mask` are `[b, h, w]`; targets are inverse depth like
/// DPT's output (see [`inverse_depth`]), in any scale and offset. Masked-out pixels
/// (mask 0) do not count; every image should keep at least two distinct valid pixels.
pub fn ssi_loss(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check_same("target", pred, target)?;
    check_same("mask", pred, mask)?;
    let m = mask.to_dtype(pred.dtype())?;
    let t = target.to_dtype(pred.dtype())?;
    let sum = |x: &Tensor| x.sum_keepdim(2)?.sum_keepdim(1);
    let mp = (&m * pred)?;
    let a00 = sum(&(&mp * pred)?)?;
    let a01 = sum(&mp)?;
    let a11 = sum(&m)?;
    let b0 = sum(&(&mp * &t)?)?;
    let b1 = sum(&(&m * &t)?)?;
    let det = ((&a00 * &a11)? - a01.sqr()?)? + SSI_EPS;
    let det = det?;
    let scale = ((&a11 * &b0)? - (&a01 * &b1)?)?.div(&det)?;
    let shift = ((&a00 * &b1)? - (&a01 * &b0)?)?.div(&det)?;
    let res = pred.broadcast_mul(&scale)?.broadcast_add(&shift)?.sub(&t)?;
    let total = (&m * res.sqr()?)?.sum_all()?;
    total / (m.sum_all()?.to_scalar_f64()? * 2.0).max(f64::MIN_POSITIVE)
}

/// Mean absolute error over the mask: for targets in the checkpoint's own units.
pub fn l1_loss(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check_same("target", pred, target)?;
    check_same("mask", pred, mask)?;
    let m = mask.to_dtype(pred.dtype())?;
    let err = (pred - target.to_dtype(pred.dtype())?)?.abs()?;
    (m.clone() * err)?.sum_all()? / m.sum_all()?.to_scalar_f64()?.max(f64::MIN_POSITIVE)
}

/// `(1 / depth, mask)` where `depth > 0` and finite, `(0, 0)` elsewhere: converts a
/// rendered depth map (distance) into the inverse-depth targets of the losses.
pub fn inverse_depth(depth: &Tensor) -> Result<(Tensor, Tensor)> {
    let d = depth
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let ok = |v: f32| v > 0.0 && v.is_finite();
    let inv: Vec<f32> = d
        .iter()
        .map(|&v| if ok(v) { 1.0 / v } else { 0.0 })
        .collect();
    let mask: Vec<f32> = d.iter().map(|&v| f32::from(ok(v))).collect();
    let dev = depth.device();
    Ok((
        Tensor::from_vec(inv, depth.dims(), dev)?.to_dtype(depth.dtype())?,
        Tensor::from_vec(mask, depth.dims(), dev)?.to_dtype(depth.dtype())?,
    ))
}

trait ScalarF64 {
    fn to_scalar_f64(&self) -> Result<f64>;
}

impl ScalarF64 for Tensor {
    fn to_scalar_f64(&self) -> Result<f64> {
        self.to_dtype(DType::F64)?.to_scalar::<f64>()
    }
}

/// `DPTImageProcessor` (PIL backend): resize (optionally keeping the aspect ratio and
/// rounding to a multiple), rescale, normalise, optionally centre-pad with zeros to a
/// multiple of `size_divisor`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    /// Target `(height, width)`; `None` when `do_resize` is false.
    pub size: Option<(usize, usize)>,
    pub keep_aspect_ratio: bool,
    pub ensure_multiple_of: usize,
    pub rescale_factor: Option<f32>,
    /// `(mean, std)` per channel.
    pub normalize: Option<([f32; 3], [f32; 3])>,
    /// `size_divisor` when `do_pad` is set.
    pub pad_to_multiple: Option<usize>,
}

impl Default for ImageProcessor {
    /// transformers' defaults (384 x 384, mean and std 0.5).
    fn default() -> Self {
        Self {
            size: Some((384, 384)),
            keep_aspect_ratio: false,
            ensure_multiple_of: 1,
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some(([0.5; 3], [0.5; 3])),
            pad_to_multiple: None,
        }
    }
}

impl ImageProcessor {
    /// Reads `preprocessor_config.json`. Only bicubic resampling (`resample: 3`, the
    /// default) is supported.
    pub fn from_file(path: &Path) -> std::result::Result<Self, WeightsError> {
        let v: Value = weights::load_config(path)?;
        let d = Self::default();
        let cerr = |f: &str, m: String| weights::config_error(path, f, m);
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        let flag = |k: &str, default: bool| -> std::result::Result<bool, WeightsError> {
            match get(k) {
                None => Ok(default),
                Some(x) => x
                    .as_bool()
                    .ok_or_else(|| cerr(k, format!("expected a bool, got {x}"))),
            }
        };
        let uint = |k: &str, x: &Value| -> std::result::Result<usize, WeightsError> {
            x.as_u64()
                .map(|u| u as usize)
                .ok_or_else(|| cerr(k, format!("expected an integer, got {x}")))
        };
        if let Some(r) = get("resample") {
            if r.as_u64() != Some(3) {
                return Err(cerr(
                    "resample",
                    format!("only bicubic (3) is supported, got {r}"),
                ));
            }
        }
        let size = if flag("do_resize", true)? {
            Some(match get("size") {
                None => (384, 384),
                Some(n @ Value::Number(_)) => {
                    let s = uint("size", n)?;
                    (s, s)
                }
                Some(o) => {
                    let dim = |k: &str| match o.get(k) {
                        Some(x) => uint(&format!("size.{k}"), x),
                        None => Err(cerr(
                            &format!("size.{k}"),
                            format!("DPT needs `height` and `width`, got {o}"),
                        )),
                    };
                    (dim("height")?, dim("width")?)
                }
            })
        } else {
            None
        };
        let ensure_multiple_of = match get("ensure_multiple_of") {
            None => 1,
            Some(x) => uint("ensure_multiple_of", x)?,
        };
        if ensure_multiple_of == 0 {
            return Err(cerr("ensure_multiple_of", "must be at least 1".into()));
        }
        let rescale_factor = if flag("do_rescale", true)? {
            Some(match get("rescale_factor") {
                None => 1.0 / 255.0,
                Some(x) => x
                    .as_f64()
                    .ok_or_else(|| cerr("rescale_factor", format!("expected a number, got {x}")))?
                    as f32,
            })
        } else {
            None
        };
        let triple = |k: &str| -> std::result::Result<[f32; 3], WeightsError> {
            let mut out = [0.5f32; 3];
            match get(k) {
                None => {}
                Some(Value::Number(n)) => out = [n.as_f64().unwrap_or(0.5) as f32; 3],
                Some(Value::Array(a)) if a.len() == 3 => {
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x
                            .as_f64()
                            .ok_or_else(|| cerr(k, format!("expected numbers, got {x}")))?
                            as f32;
                    }
                }
                Some(x) => return Err(cerr(k, format!("expected 3 numbers, got {x}"))),
            }
            Ok(out)
        };
        let normalize = if flag("do_normalize", true)? {
            Some((triple("image_mean")?, triple("image_std")?))
        } else {
            None
        };
        let pad_to_multiple = match (flag("do_pad", false)?, get("size_divisor")) {
            (true, Some(x)) => match uint("size_divisor", x)? {
                0 => return Err(cerr("size_divisor", "must be at least 1".into())),
                s => Some(s),
            },
            _ => None,
        };
        Ok(Self {
            size,
            keep_aspect_ratio: flag("keep_aspect_ratio", d.keep_aspect_ratio)?,
            ensure_multiple_of,
            rescale_factor,
            normalize,
            pad_to_multiple,
        })
    }

    /// `preprocessor_config.json` of a checkpoint directory.
    pub fn load(dir: &Path) -> std::result::Result<Self, WeightsError> {
        Self::from_file(&dir.join("preprocessor_config.json"))
    }

    /// The size `(height, width)` an `h x w` image is resized to (transformers'
    /// `get_resize_output_image_size`, Python rounding included).
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let Some((th, tw)) = self.size else {
            return (h, w);
        };
        let mut sh = th as f64 / h as f64;
        let mut sw = tw as f64 / w as f64;
        if self.keep_aspect_ratio {
            // Scale as little as possible.
            if (1.0 - sw).abs() < (1.0 - sh).abs() {
                sh = sw;
            } else {
                sw = sh;
            }
        }
        let m = self.ensure_multiple_of as f64;
        let fit = |v: f64| ((v / m).round_ties_even() * m) as usize;
        (fit(sh * h as f64), fit(sw * w as f64))
    }

    /// Channel-first float pixels `[3, h, w]` (flattened) and `(h, w)`.
    pub fn pixels(&self, img: &RgbImage) -> Result<(Vec<f32>, (usize, usize))> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (nh, nw) = self.output_size(h, w);
        if nh == 0 || nw == 0 {
            candle_core::bail!("image {w}x{h} resizes to an empty {nw}x{nh} image");
        }
        let resized;
        let img = if (nh, nw) == (h, w) {
            img
        } else {
            resized = preprocess::resize_bicubic_pil(img, nw, nh);
            &resized
        };
        let (ph, pw) = match self.pad_to_multiple {
            Some(d) => (nh.div_ceil(d) * d, nw.div_ceil(d) * d),
            None => (nh, nw),
        };
        let (top, left) = ((ph - nh) / 2, (pw - nw) / 2);
        let mut out = vec![0f32; 3 * ph * pw];
        for (x, y, px) in img.enumerate_pixels() {
            for c in 0..3 {
                let mut v = px.0[c] as f32;
                if let Some(f) = self.rescale_factor {
                    v *= f;
                }
                if let Some((mean, std)) = self.normalize {
                    v = (v - mean[c]) / std[c];
                }
                out[c * ph * pw + (y as usize + top) * pw + x as usize + left] = v;
            }
        }
        Ok((out, (ph, pw)))
    }

    /// `pixel_values` `[n, 3, h, w]` for a batch of images (all must end the same size).
    pub fn to_tensor(&self, images: &[RgbImage], device: &Device) -> Result<Tensor> {
        let mut data = Vec::new();
        let mut size = None;
        for (i, img) in images.iter().enumerate() {
            let (px, hw) = self.pixels(img)?;
            if *size.get_or_insert(hw) != hw {
                candle_core::bail!(
                    "pixel_values: image {i} processes to {hw:?}, not {size:?} like image 0"
                );
            }
            data.extend(px);
        }
        let (h, w) = size.unwrap_or((0, 0));
        Tensor::from_vec(data, (images.len(), 3, h, w), device)
    }
}
