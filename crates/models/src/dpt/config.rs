//! `DPTConfig`: parsing, transformers' defaults and the checks of what is supported.

use std::path::Path;

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ops;
use crate::weights::{self, WeightsError};

/// Activation named by `hidden_act` (ViT MLP and the readout projection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
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
    pub(super) fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gelu => ops::gelu_erf(x),
            Self::GeluTanh => x.gelu(),
            Self::QuickGelu => ops::quick_gelu(x),
            Self::Relu => x.relu(),
        }
    }
}

/// How the CLS token enters the reassembled maps (`readout_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
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
    #[serde(serialize_with = "ints_where_integral")]
    pub reassemble_factors: Vec<f64>,
    pub neck_hidden_sizes: Vec<usize>,
    pub fusion_hidden_size: usize,
    pub head_in_index: i64,
    pub use_batch_norm_in_fusion_residual: bool,
    pub use_bias_in_fusion_residual: Option<bool>,
    pub add_projection: bool,
    /// Unsupported (external backbones): must stay `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backbone_config: Option<Value>,
    /// Unsupported (external backbones): must stay `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backbone: Option<Value>,
}

/// transformers uses an up-sampling factor as a kernel size, which must be an int.
fn ints_where_integral<S: serde::Serializer>(
    v: &[f64],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let out: Vec<Value> = v
        .iter()
        .map(|&f| {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                Value::from(f as i64)
            } else {
                Value::from(f)
            }
        })
        .collect();
    out.serialize(s)
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
pub(super) enum Resample {
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

    /// The `config.json` transformers reads back into the same `DPTForDepthEstimation`.
    pub fn to_hf_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("model_type".into(), "dpt".into());
            o.insert(
                "architectures".into(),
                Value::from(vec!["DPTForDepthEstimation"]),
            );
        }
        v
    }

    /// Checks what this implementation supports; errors name the field and `path`.
    pub fn validate(&self, path: &Path) -> std::result::Result<(), WeightsError> {
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

    pub(super) fn head_index(&self) -> Option<usize> {
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
    pub(super) fn fusion_bias(&self) -> bool {
        self.use_bias_in_fusion_residual
            .unwrap_or(!self.use_batch_norm_in_fusion_residual)
    }

    /// Glob patterns (for `train::ParamFilter`) of checkpoint tensors that get no
    /// gradient from the depth output: batch-norm running statistics, the backbone's
    /// final layer norm (only `DPTModel.last_hidden_state` uses it), the first fusion
    /// layer's `residual_layer1` (it never has a residual input), encoder layers after
    /// the last one in `backbone_out_indices`, and, when `head_in_index` is not the last
    /// fusion stage, the finer stages and the features only they read. They are loaded
    /// all the same, so that saved weights are complete checkpoints.
    pub fn frozen_patterns(&self) -> Vec<String> {
        let mut p = vec![
            "*.running_mean".to_string(),
            "*.running_var".to_string(),
            "dpt.layernorm.*".to_string(),
            "neck.fusion_stage.layers.0.residual_layer1.*".to_string(),
        ];
        let last = self.out_layers().last().copied().unwrap_or(0);
        p.extend((last + 1..self.num_hidden_layers).map(|l| format!("dpt.encoder.layer.{l}.*")));
        let n = self.neck_hidden_sizes.len();
        let head = self.head_index().unwrap_or(n - 1);
        for j in head + 1..n {
            // Fusion layer j reads the reassembled feature n - 1 - j.
            let f = n - 1 - j;
            p.extend([
                format!("neck.fusion_stage.layers.{j}.*"),
                format!("neck.convs.{f}.*"),
                format!("neck.reassemble_stage.layers.{f}.*"),
                format!("neck.reassemble_stage.readout_projects.{f}.*"),
            ]);
        }
        p
    }
}

pub(super) fn resample_of(f: f64) -> std::result::Result<Resample, String> {
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
