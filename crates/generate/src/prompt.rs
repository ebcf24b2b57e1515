//! The prompt library: a header describing what programs may call, then worked examples,
//! then the question.
//!
//! The step header is generated from the module registry (names, signatures, docs), so a
//! module added to the registry shows up in prompts without editing text here. Examples are
//! chosen per task and style from [`crate::prompt_examples`]; how many and which (by seed) is
//! selectable, and since the whole prompt text goes into the cache key, changing either
//! never reuses generations made for another prompt.

use crate::prompt_examples::{self as lib, Example};
use crate::{ProgramStyle, Task};
use sdvp_core::rng::SplitMix64;
use sdvp_program::steps::Registry;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A prompt in two parts: chat servers get them as system and user messages, completion
/// servers get [`Prompt::completion_text`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompt {
    pub fn completion_text(&self) -> String {
        format!("{}\n\n{}", self.system, self.user)
    }
}

/// Which in-context examples to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptOptions {
    /// How many examples (capped at the library's size for the task and style).
    pub examples: usize,
    /// Which subset: seed 0 takes the first `examples` in library order, any other seed a
    /// seeded random subset (shown in library order, so only the choice varies).
    pub seed: u64,
}

impl Default for PromptOptions {
    fn default() -> Self {
        Self {
            examples: 6,
            seed: 0,
        }
    }
}

/// The worked examples the library holds for a task and style.
pub fn library(task: Task, style: ProgramStyle) -> &'static [Example] {
    match (task, style) {
        (Task::GqaWorld | Task::AttrWorld, ProgramStyle::Step) => lib::GQA_WORLD_STEP,
        (Task::GqaWorld | Task::AttrWorld, ProgramStyle::Python) => lib::GQA_WORLD_PYTHON,
        (Task::NlvrWorld, ProgramStyle::Step) => lib::NLVR_WORLD_STEP,
        (Task::NlvrWorld, ProgramStyle::Python) => lib::NLVR_WORLD_PYTHON,
        (Task::Gqa, ProgramStyle::Step) => lib::GQA_STEP,
        (Task::Gqa, ProgramStyle::Python) => lib::GQA_PYTHON,
        (Task::Nlvr2, ProgramStyle::Step) => lib::NLVR2_STEP,
        (Task::Nlvr2, ProgramStyle::Python) => lib::NLVR2_PYTHON,
    }
}

fn choose(pool: &'static [Example], options: PromptOptions) -> Vec<&'static Example> {
    let k = options.examples.min(pool.len());
    let mut idx: Vec<usize> = (0..pool.len()).collect();
    if options.seed != 0 {
        SplitMix64::new(options.seed).shuffle(&mut idx);
    }
    let mut chosen: Vec<usize> = idx.into_iter().take(k).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| &pool[i]).collect()
}

/// The module list of a step prompt, one line per module, from the registry.
pub fn step_module_list(registry: &Registry) -> String {
    let mut out = String::new();
    for m in registry.modules() {
        let sig = m.signature();
        let args: Vec<String> = sig
            .args
            .iter()
            .map(|a| {
                let opt = if a.required { "" } else { "?" };
                format!("{}{opt}: {}", a.name, a.ty)
            })
            .collect();
        let _ = writeln!(
            out,
            "{}({}) -> {}: {}",
            m.name(),
            args.join(", "),
            sig.output,
            m.doc()
        );
    }
    out
}

fn step_header(task: Task, registry: &Registry) -> String {
    let inputs = if task.is_pair() {
        "two images, LEFT and RIGHT; judge whether the statement is true of the pair and answer 'yes' or 'no'"
    } else {
        "one image, IMAGE; answer the question with a short text"
    };
    format!(
        "You write step programs that answer visual questions. The program gets {inputs}.\n\
         Each line is one step: NAME=MODULE(arg=value,...). A value is an earlier step's NAME, \
         an input image, or a quoted text or a number. Names are upper case and each is set once.\n\
         EVAL's expr is a Python-like expression in which {{NAME}} stands for an earlier \
         result, e.g. \"'yes' if {{ANSWER0}} > 0 else 'no'\".\n\
         The last line must be FINAL_RESULT=RESULT(var=NAME).\n\
         Modules (argument: type; ? marks an optional argument):\n{}\n\
         Write only the program, with no explanation.",
        step_module_list(registry)
    )
}

const IMAGE_PATCH_API: &str = "class ImagePatch:
    # A crop of an image. left, lower, right, upper: its box in pixels of the original image,
    # origin at the bottom left; width, height, horizontal_center, vertical_center likewise.
    def find(self, object_name: str) -> list[ImagePatch]:
        # Patches of every object of that name in this patch, best match first.
    def exists(self, object_name: str) -> bool:
        # Whether at least one such object is in this patch.
    def verify_property(self, object_name: str, property: str) -> bool:
        # Whether the object in this patch has the property (a colour, material, size...).
    def best_text_match(self, option_list: list[str]) -> str:
        # The option that describes this patch best.
    def simple_query(self, question: str) -> str:
        # A short answer to a simple question about this patch.
    def compute_depth(self) -> float:
        # Median distance from the camera of this patch (smaller is closer).
    def crop(self, left: int, lower: int, right: int, upper: int) -> ImagePatch:
        # A sub-patch; coordinates as for the patch's own box.
    def overlaps_with(self, left: int, lower: int, right: int, upper: int) -> bool:
        # Whether this patch overlaps the box.

def bool_to_yesno(value: bool) -> str:
    # 'yes' or 'no'.
def llm_query(question: str) -> str:
    # Answer a question that needs knowledge, not the image.";

fn python_header(task: Task) -> String {
    let signature = if task.is_pair() {
        "def execute_command(image_dict) -> str, where image_dict['left'] and image_dict['right'] \
         are the two images; it judges whether the statement is true of the pair and returns \
         'yes' or 'no'"
    } else {
        "def execute_command(image) -> str, which answers the question about the image with a short text"
    };
    format!(
        "You write Python functions that answer visual questions using only this API:\n\n\
         {IMAGE_PATCH_API}\n\n\
         Write {signature}. No imports, no other functions, no explanation."
    )
}

/// The full prompt for one question.
pub fn build(
    task: Task,
    style: ProgramStyle,
    registry: &Registry,
    options: PromptOptions,
    question: &str,
) -> Prompt {
    let system = match style {
        ProgramStyle::Step => step_header(task, registry),
        ProgramStyle::Python => python_header(task),
    };
    let label = if task.is_pair() {
        "Statement"
    } else {
        "Question"
    };
    let mut user = String::new();
    for e in choose(library(task, style), options) {
        let _ = write!(
            user,
            "{label}: {}\nProgram:\n{}\n\n",
            e.question,
            e.program.trim_end()
        );
    }
    let _ = write!(user, "{label}: {}\nProgram:\n", question.trim());
    Prompt { system, user }
}

/// The stop text for completion servers: the start of the next example.
pub fn stop_texts(task: Task) -> Vec<String> {
    let label = if task.is_pair() {
        "Statement"
    } else {
        "Question"
    };
    vec![format!("\n{label}:")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{extract_python, extract_step};
    use sdvp_program::exec::check_program;

    fn registry() -> Registry {
        Registry::visual_reasoning(Default::default())
    }

    #[test]
    fn step_header_lists_every_registered_module() {
        let r = registry();
        let p = build(
            Task::GqaWorld,
            ProgramStyle::Step,
            &r,
            PromptOptions::default(),
            "Is it red?",
        );
        for name in r.names() {
            assert!(p.system.contains(&format!("{name}(")), "{name} missing");
        }
        assert!(p
            .system
            .contains("LOC(image: image, object: text) -> boxes"));
        assert!(p.user.ends_with("Question: Is it red?\nProgram:\n"));
    }

    #[test]
    fn example_count_and_seed_select_examples() {
        let r = registry();
        let q = "How many?";
        let count = |p: &Prompt| p.user.matches("Program:").count() - 1;
        let two = build(
            Task::Gqa,
            ProgramStyle::Step,
            &r,
            PromptOptions {
                examples: 2,
                seed: 0,
            },
            q,
        );
        assert_eq!(count(&two), 2);
        let all = build(
            Task::Gqa,
            ProgramStyle::Step,
            &r,
            PromptOptions {
                examples: 100,
                seed: 0,
            },
            q,
        );
        assert_eq!(count(&all), library(Task::Gqa, ProgramStyle::Step).len());
        let s1 = build(
            Task::Gqa,
            ProgramStyle::Step,
            &r,
            PromptOptions {
                examples: 2,
                seed: 1,
            },
            q,
        );
        let s1b = build(
            Task::Gqa,
            ProgramStyle::Step,
            &r,
            PromptOptions {
                examples: 2,
                seed: 1,
            },
            q,
        );
        assert_eq!(s1, s1b);
        let differs = (2..20u64).any(|seed| {
            build(
                Task::Gqa,
                ProgramStyle::Step,
                &r,
                PromptOptions { examples: 2, seed },
                q,
            ) != s1
        });
        assert!(differs);
        let none = build(
            Task::Nlvr2,
            ProgramStyle::Python,
            &r,
            PromptOptions {
                examples: 0,
                seed: 0,
            },
            q,
        );
        assert_eq!(none.user, "Statement: How many?\nProgram:\n");
    }

    #[test]
    fn every_library_example_extracts_and_validates() {
        let r = registry();
        for task in Task::ALL {
            for style in [ProgramStyle::Step, ProgramStyle::Python] {
                let pool = library(task, style);
                assert!(pool.len() >= 4, "{task} {style}");
                for e in pool {
                    match style {
                        ProgramStyle::Step => {
                            let p = extract_step(e.program).unwrap();
                            assert_eq!(p, e.program, "{task}: {}", e.question);
                            if let Err(problems) = check_program(&p, &r, &task.step_inputs()) {
                                panic!("{task}: {}: {problems:?}", e.question);
                            }
                            let uses_pair = p.contains("=LEFT,") || p.contains("=RIGHT,");
                            assert_eq!(uses_pair, task.is_pair(), "{}", e.question);
                        }
                        ProgramStyle::Python => {
                            let p = extract_python(e.program).unwrap();
                            assert_eq!(p, e.program, "{task}: {}", e.question);
                            let arg = if task.is_pair() {
                                "(image_dict)"
                            } else {
                                "(image)"
                            };
                            assert!(p.starts_with(&format!("def execute_command{arg}")));
                        }
                    }
                }
            }
        }
    }
}
