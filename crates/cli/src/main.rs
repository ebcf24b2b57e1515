//! The `sdvp` command. Thin glue: every command lives in its own file and calls the crates.

mod backends;
mod cmd_ask;
mod cmd_demo;
mod cmd_distill;
mod cmd_eval;
mod cmd_generate;
mod cmd_model;
mod cmd_program;
mod cmd_report;
mod cmd_trace;
mod cmd_train;
mod cmd_world;
mod programs;

use clap::{Parser, Subcommand};

/// Visual programming with stepwise distillation.
#[derive(Parser)]
#[command(name = "sdvp", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask one question about an image: a program is written, run and explained.
    Ask(cmd_ask::AskArgs),
    /// The main job: world, gold programs in both styles, rationales, distillation data path.
    Demo(cmd_demo::DemoArgs),
    /// Check, run and list step or Python programs.
    Program(cmd_program::ProgramArgs),
    /// Compare evaluation runs in an HTML report: tables, charts, curves, changed answers.
    Report(cmd_report::ReportArgs),
    /// Render traces as HTML visual rationales.
    Trace(cmd_trace::TraceArgs),
    /// Generate and look at the procedural world.
    World(cmd_world::WorldArgs),
    /// Run programs on a dataset split and score the answers.
    Eval(cmd_eval::EvalArgs),
    /// Generate programs for a dataset split with a language model.
    Generate(Box<cmd_generate::GenerateArgs>),
    /// Run one checkpoint directly (outputs to compare with transformers).
    Model(cmd_model::ModelArgs),
    /// Train an embedded model on the world.
    Train(cmd_train::TrainArgs),
    /// One SDVP step: distil a task's teacher into the student behind a module.
    Distill(Box<cmd_distill::DistillArgs>),
}

fn main() {
    sdvp_kernels::tune_process();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ask(a) => cmd_ask::run(a),
        Command::Demo(a) => cmd_demo::run(a),
        Command::Program(a) => cmd_program::run(a),
        Command::Report(a) => cmd_report::run(a),
        Command::Trace(a) => cmd_trace::run(a),
        Command::World(a) => cmd_world::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Generate(a) => cmd_generate::run(*a),
        Command::Model(a) => cmd_model::run(a),
        Command::Train(a) => cmd_train::run(a),
        Command::Distill(a) => cmd_distill::run(*a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
