//! `hugesync man`: the manual pages.

use std::io::Write;

use super::write_stdout;
use crate::cli::Cli;
use crate::error::{Error, ExitStatus};

/// `hugesync man [SUBCOMMAND] [--dir DIR]`: manual pages (roff), one per
/// command as git and cargo ship them: hugesync(1) and hugesync-sync(1), ….
pub(super) fn manual_pages(args: &crate::cli::ManArgs) -> Result<ExitStatus, Error> {
    use clap::CommandFactory;
    let top = Cli::command().name("hugesync");
    let pages: Vec<(String, clap::Command)> =
        std::iter::once(("hugesync".to_string(), top.clone()))
            .chain(
                top.get_subcommands()
                    .filter(|sub| sub.get_name() != "help")
                    .map(|sub| {
                        let name = format!("hugesync-{}", sub.get_name());
                        (name.clone(), sub.clone().name(name))
                    }),
            )
            .collect();
    let render = |command: clap::Command| {
        let mut out = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut out)
            .map_err(Error::Output)?;
        Ok::<_, Error>(out)
    };
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(Error::Output)?;
        for (name, command) in pages {
            let path = dir.join(format!("{name}.1"));
            let page = render(command)?;
            crate::outfile::write_output(&path, Error::Output, |out| {
                out.write_all(&page).map_err(Error::Output)
            })?;
        }
        return Ok(ExitStatus::Success);
    }
    let wanted = match &args.subcommand {
        Some(sub) => format!("hugesync-{sub}"),
        None => "hugesync".to_string(),
    };
    let Some((_, command)) = pages.into_iter().find(|(name, _)| *name == wanted) else {
        return Err(Error::Usage(format!(
            "no manual page for `{}`: name a subcommand (`hugesync --help` lists them)",
            args.subcommand.as_deref().unwrap_or_default()
        )));
    };
    write_stdout(&render(command)?)
}
