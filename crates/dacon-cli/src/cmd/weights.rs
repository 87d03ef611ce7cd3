use std::process::ExitCode;

use anyhow::Result;
use dacon_neural::describe::{describe, WeightKind};

use crate::args::WeightsCommand;

pub fn run(cmd: &WeightsCommand) -> Result<ExitCode> {
    match cmd {
        WeightsCommand::Check { files } => {
            let mut unknown = false;
            for f in files {
                let kind = describe(f)?;
                unknown |= matches!(kind, WeightKind::Unknown(..));
                println!("{}: {kind}", f.display());
            }
            Ok(if unknown {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
