//! `llm`: `llm_query` answered by a program writer's language model (an OpenAI-compatible
//! server or a local checkpoint through `sdvp-generate`).

use crate::common::{fail_all, Answers};
use sdvp_core::{Backend, ModuleError, ModuleKind, Request, Response};
use sdvp_generate::backend::{GenRequest, Generator, Sampling};
use sdvp_generate::prompt::Prompt;
use sdvp_generate::{ProgramStyle, Task};

const SYSTEM: &str = "Answer the question in a few words.";

pub struct LlmBackend {
    generator: Box<dyn Generator>,
    max_tokens: u32,
}

impl LlmBackend {
    pub fn new(generator: Box<dyn Generator>) -> Self {
        Self {
            generator,
            max_tokens: 64,
        }
    }

    /// `openai:BASE_URL:MODEL` (the URL may contain `:`; the model is after the last one).
    pub fn openai(spec: &str) -> anyhow::Result<Self> {
        let Some((url, model)) = spec.rsplit_once(':') else {
            anyhow::bail!("llm=openai:{spec}: expected openai:BASE_URL:MODEL");
        };
        if model.is_empty() || model.starts_with("//") {
            anyhow::bail!("llm=openai:{spec}: expected openai:BASE_URL:MODEL (no model name)");
        }
        let config = sdvp_generate::openai::OpenAiConfig::new(url, model)
            .with_key_from_env("OPENAI_API_KEY");
        let g = sdvp_generate::openai::OpenAiGenerator::new(config)
            .map_err(|e| anyhow::anyhow!("llm=openai:{spec}: {e}"))?;
        Ok(Self::new(Box::new(g)))
    }

    /// `local:DIR`: a decoder checkpoint run in process.
    pub fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        let g = sdvp_generate::local::load(dir, None)
            .map_err(|e| anyhow::anyhow!("llm=local:{}: {e}", dir.display()))?;
        Ok(Self::new(g))
    }
}

impl Backend for LlmBackend {
    fn name(&self) -> String {
        format!("llm:{}", self.generator.backend())
    }
    fn answered_by(&self, _kind: ModuleKind) -> String {
        format!("{}:{}", self.generator.backend(), self.generator.model())
    }
    fn run_batch(&self, kind: ModuleKind, requests: &[Request]) -> Answers {
        if kind != ModuleKind::Llm {
            return fail_all(
                kind,
                requests.len(),
                "the llm backend answers only llm calls",
            );
        }
        let gen: Vec<GenRequest> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| GenRequest {
                id: format!("llm-{i}"),
                question: match r {
                    Request::Llm { prompt } => prompt.clone(),
                    _ => String::new(),
                },
                task: Task::Gqa,
                style: ProgramStyle::Python,
                prompt: Prompt {
                    system: SYSTEM.into(),
                    user: match r {
                        Request::Llm { prompt } => prompt.clone(),
                        _ => String::new(),
                    },
                },
                sampling: Sampling {
                    max_tokens: self.max_tokens,
                    ..Default::default()
                },
                sample_index: 0,
            })
            .collect();
        let out = self.generator.generate(&gen);
        if out.len() != requests.len() {
            return fail_all(
                kind,
                requests.len(),
                "language model returned a wrong count",
            );
        }
        out.into_iter()
            .map(|r| {
                r.map(|text| Response::Text {
                    text: text.trim().to_string(),
                })
                .map_err(|e| ModuleError::new(kind, e.message))
            })
            .collect()
    }
}
