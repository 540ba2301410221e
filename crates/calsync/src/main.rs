//! `calsync`: find appointment times that work for the provider, the patient and every caregiver.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc's allocator spent a third of the server's CPU under the search load test
// (docs/benchmarks-log.md); mimalloc's thread-local heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod busy;
mod emulate;
mod find;
mod generate;
mod ingest;
mod render;
mod serve;
mod token;
mod when;
mod worker;

/// calsync: appointment times that work for everyone involved in care.
#[derive(Parser)]
#[command(name = "calsync", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find times when a provider Slot is open and every participant is free.
    Find(Box<find::FindArgs>),
    /// Show the busy windows calsync reads from one iCalendar file (JSON lines).
    Busy(busy::BusyArgs),
    /// Run the FHIR server (and, in the embedded default, the worker).
    Serve(serve::ServeArgs),
    /// Run the background worker on its own: calendar syncs, the nightly run.
    Worker(worker::WorkerArgs),
    /// Sync calendar connections now, in this process, with a progress bar.
    Sync(worker::SyncArgs),
    /// Ingest a SMART Scheduling Links publisher now (its manifest URL or a directory), with a
    /// progress bar; it stays registered, and the worker polls it from then on.
    Ingest(ingest::IngestArgs),
    /// Print a bearer token of the development issuer (CALSYNC_ENV=local), for curl and the
    /// demo: `calsync token --as Patient/maria`.
    Token(token::TokenArgs),
    /// Write synthetic provider availability (NDJSON) for benchmarks.
    Generate(generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Find(args) => find::run(*args),
        Command::Busy(args) => busy::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Worker(args) => worker::run_worker(args),
        Command::Sync(args) => worker::run_sync(args),
        Command::Ingest(args) => ingest::run(args),
        Command::Token(args) => token::run(args),
        Command::Generate(args) => generate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("calsync: error: {message}");
            ExitCode::FAILURE
        }
    }
}
