//! `completions` and `man`: shell completion scripts and manual pages, generated from the clap
//! definitions of [`super::Cli`] so they cannot drift from the flags.
//!
//! Completions come from `clap_complete`, pages from `clap_mangen`. Each page renders a command's
//! `after_help` in two sections of its own: the prose as NOTES (one paragraph per line) and the
//! lines after `Examples:` as EXAMPLES (a command, then what it does), so `--help` and `man` show
//! the same worked examples.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::aot::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use mhc_analyze::export::{OutputDirectory, write_all_atomic};

use super::{Cli, Outcome, write_stdout};

/// The binary's name as the user types it: completions register for it, pages are named by it.
const BIN_NAME: &str = "mhc-analyze";

/// The name the bash script is generated for before it is registered for [`BIN_NAME`].
const BASH_FUNCTION_NAME: &str = "mhc_analyze";

/// The two lines the roff writer puts before every fragment it renders (they define the string
/// `Aq`, an apostrophe); the page needs them once, at the top.
const APOSTROPHE_PREAMBLE: &[u8] = b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Where a command's `after_help` turns from notes into examples.
const EXAMPLES_MARKER: &str = "Examples:";

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  mhc-analyze completions bash > ~/.local/share/bash-completion/completions/mhc-analyze
      Bash: completed from the next shell on (needs the bash-completion package).
  mhc-analyze completions zsh > ~/.zfunc/_mhc-analyze
      Zsh: with fpath+=(~/.zfunc) before compinit in ~/.zshrc.
  mhc-analyze completions fish > ~/.config/fish/completions/mhc-analyze.fish
      Fish: picked up automatically.")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    shell: Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  mhc-analyze man | man -l -
      Read the main page without installing it.
  mhc-analyze man audit > mhc-analyze-audit.1
      The page of one subcommand, mhc-analyze-audit(1).
  mhc-analyze man --out ~/.local/share/man/man1
      Install every page (mhc-analyze.1, mhc-analyze-gain.1, …); then `man mhc-analyze`.")]
pub struct ManArgs {
    /// A subcommand whose page to print, instead of the main page mhc-analyze(1).
    #[arg(value_name = "COMMAND", value_parser = parse_subcommand, conflicts_with = "out")]
    command: Option<String>,
    /// Write every page, mhc-analyze.1 and one mhc-analyze-COMMAND.1 per subcommand, into this
    /// folder (created if missing) instead of printing one.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Accepts the name of a visible subcommand of `mhc-analyze` (not `help`).
fn parse_subcommand(text: &str) -> Result<String, String> {
    let names = subcommand_names(&built_command());
    if names.iter().any(|name| name == text) {
        Ok(text.to_string())
    } else {
        Err(format!("expected one of {}", names.join(", ")))
    }
}

/// Prints the completion script for `args.shell` on stdout.
pub fn run_completions(args: CompletionsArgs) -> anyhow::Result<Outcome> {
    write_stdout(&completion_script(args.shell))?;
    Ok(Outcome::Done)
}

/// Prints one manual page on stdout, or writes all of them into `--out`.
pub fn run_man(args: ManArgs) -> anyhow::Result<Outcome> {
    if let Some(directory) = args.out {
        let pages = all_pages()?;
        let output = OutputDirectory::prepare(&directory)?;
        let files = pages
            .into_iter()
            .map(|(file_name, bytes)| (directory.join(file_name), bytes))
            .collect();
        write_all_atomic(files)?;
        output.keep();
        return Ok(Outcome::Done);
    }
    let command = built_command();
    let page = match args.command {
        None => command,
        Some(name) => command
            .find_subcommand(&name)
            .cloned()
            .with_context(|| format!("no subcommand '{name}'"))?,
    };
    write_stdout(&man_page(page)?)?;
    Ok(Outcome::Done)
}

/// The completion script of `mhc-analyze` for `shell`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    if shell != Shell::Bash {
        clap_complete::aot::generate(shell, &mut command, BIN_NAME, &mut script);
        return script;
    }
    // NOTE: clap_complete's bash script completes nothing below a subcommand when the binary's
    // name has a hyphen (clap-rs/clap#6421: its loop and its case arms spell the state
    // differently). Generate it for a name without one and register it for the real name; the
    // test `bash_completes_the_flags_of_a_subcommand` runs it in bash.
    clap_complete::aot::generate(shell, &mut command, BASH_FUNCTION_NAME, &mut script);
    String::from_utf8_lossy(&script)
        .replace(
            &format!(" {BASH_FUNCTION_NAME}\n"),
            &format!(" {BIN_NAME}\n"),
        )
        .into_bytes()
}

/// The full command, built: subcommands carry their display names (`mhc-analyze-gain`), and no
/// `help` subcommand is listed (it has no page of its own).
fn built_command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// The names of the visible subcommands, in definition order.
fn subcommand_names(command: &clap::Command) -> Vec<String> {
    command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name().to_string())
        .collect()
}

/// Every page as (file name, bytes): the main page first, then one per subcommand.
pub fn all_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let command = built_command();
    let mut pages = vec![page_with_name(command.clone())?];
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        pages.push(page_with_name(sub.clone())?);
    }
    Ok(pages)
}

fn page_with_name(command: clap::Command) -> anyhow::Result<(String, Vec<u8>)> {
    let file_name = Man::new(command.clone()).get_filename();
    Ok((file_name, man_page(command)?))
}

/// The roff source of `command`'s manual page (section 1): NAME, SYNOPSIS, DESCRIPTION, OPTIONS,
/// the subcommands, then NOTES and EXAMPLES from its `after_help`, and VERSION.
pub fn man_page(command: clap::Command) -> anyhow::Result<Vec<u8>> {
    let after_help = command.get_after_help().map(|text| text.to_string());
    let has_subcommands = command.get_subcommands().any(|sub| !sub.is_hide_set());
    let has_options = command.get_arguments().any(|arg| !arg.is_hide_set());
    let source = format!("{BIN_NAME} {}", command.get_version().unwrap_or_default());
    let man = Man::new(command).source(source);
    let mut sections: Vec<Vec<u8>> = Vec::new();
    let mut render = |write: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut section = Vec::new();
        write(&mut section).context("cannot render the manual page")?;
        sections.push(section);
        anyhow::Ok(())
    };
    render(&|w| man.render_title(w))?;
    render(&|w| man.render_name_section(w))?;
    render(&|w| man.render_synopsis_section(w))?;
    render(&|w| man.render_description_section(w))?;
    if has_options {
        render(&|w| man.render_options_section(w))?;
    }
    if has_subcommands {
        render(&|w| man.render_subcommands_section(w))?;
    }
    if let Some(text) = &after_help {
        render(&|w| after_help_sections(text).to_writer(w))?;
    }
    render(&|w| man.render_version_section(w))?;
    let mut page = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let body = match section.strip_prefix(APOSTROPHE_PREAMBLE) {
            Some(body) if index > 0 => body,
            _ => section.as_slice(),
        };
        page.extend_from_slice(body);
    }
    Ok(page)
}

/// NOTES (each line of the prose a paragraph) and EXAMPLES (each `mhc-analyze …` line a tagged
/// paragraph whose body is the indented lines below it) from an `after_help` text.
fn after_help_sections(text: &str) -> Roff {
    let (notes, examples) = match text.split_once(EXAMPLES_MARKER) {
        Some((notes, examples)) => (notes, Some(examples)),
        None => (text, None),
    };
    let mut roff = Roff::default();
    let mut notes = notes.lines().map(str::trim).filter(|line| !line.is_empty());
    if let Some(first) = notes.next() {
        roff.control("SH", ["NOTES"]);
        for line in std::iter::once(first).chain(notes) {
            roff.control("PP", []).text([roman(line)]);
        }
    }
    if let Some(examples) = examples {
        roff.control("SH", ["EXAMPLES"]);
        for line in examples
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
        {
            if line.starts_with(BIN_NAME) {
                roff.control("TP", []).text([bold(line)]);
            } else {
                roff.text([roman(line)]);
            }
        }
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("generated text is UTF-8")
    }

    #[test]
    fn every_shell_gets_a_script_naming_the_binary_and_each_subcommand() {
        let names = subcommand_names(&built_command());
        assert!(names.len() >= 5, "{names:?}");
        for shell in Shell::value_variants() {
            let script = text(completion_script(*shell));
            assert!(script.contains(BIN_NAME), "{shell}: no {BIN_NAME}");
            for name in &names {
                assert!(script.contains(name.as_str()), "{shell}: no '{name}'");
            }
        }
    }

    /// Runs the bash script's completion function on `words` (the last one being completed)
    /// and returns the candidates, one per line.
    fn bash_complete(words: &[&str]) -> String {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("mhc-analyze.bash");
        std::fs::write(&path, completion_script(Shell::Bash)).expect("write script");
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}' || exit 3
function=$(complete -p mhc-analyze | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')
[ -n \"$function\" ] || exit 4
COMP_WORDS=({})
COMP_CWORD={}
\"$function\" mhc-analyze '{}' '{}'
printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            quoted.join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(program)
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "bash: {:?} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    #[test]
    fn bash_completes_subcommands_for_the_binary_name() {
        let candidates = bash_complete(&["mhc-analyze", "au"]);
        assert_eq!(candidates.trim(), "audit");
    }

    #[test]
    fn bash_completes_the_flags_of_a_subcommand() {
        let candidates = bash_complete(&["mhc-analyze", "audit", "--max"]);
        let mut lines: Vec<&str> = candidates.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["--max-distance", "--max-gain"]);
        let shells = bash_complete(&["mhc-analyze", "completions", "f"]);
        assert_eq!(shells.trim(), "fish");
    }

    #[test]
    fn main_page_has_title_sections_and_the_subcommand_pages() {
        let page = text(man_page(built_command()).unwrap());
        assert!(page.contains("\n.TH mhc-analyze 1 "), "{}", &page[..120]);
        assert_eq!(
            page.matches(".ds Aq \\(aq").count(),
            1,
            "one apostrophe preamble"
        );
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH NOTES"] {
            assert!(page.contains(section), "missing {section}");
        }
        for name in subcommand_names(&built_command()) {
            assert!(
                page.contains(&format!("mhc\\-analyze\\-{name}(1)")),
                "{name}"
            );
        }
        assert!(page.contains("Exit codes: 0 success"), "exit codes missing");
    }

    #[test]
    fn subcommand_page_lists_its_flags_and_examples() {
        let command = built_command();
        let gain = command.find_subcommand("gain").unwrap().clone();
        let page = text(man_page(gain).unwrap());
        assert!(
            page.contains("\n.TH mhc-analyze-gain 1 "),
            "{}",
            &page[..120]
        );
        let source = format!("\"mhc-analyze {}\"", env!("CARGO_PKG_VERSION"));
        assert!(
            page.contains(&source),
            "the source names the binary, not `gain`"
        );
        assert!(page.contains("\\-\\-logit\\-std"), "gain's flags missing");
        assert!(page.contains(".SH EXAMPLES"));
        // The example command is a tag in bold, its explanation the paragraph body.
        assert!(page.contains(".TP\n\\fBmhc\\-analyze gain \\-\\-layers 64 \\-\\-streams 4\\fR\n"));
    }

    #[test]
    fn all_pages_are_the_main_page_and_one_per_subcommand() {
        let pages = all_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
        let mut expected = vec!["mhc-analyze.1".to_string()];
        expected.extend(
            subcommand_names(&built_command())
                .iter()
                .map(|name| format!("mhc-analyze-{name}.1")),
        );
        assert_eq!(names, expected);
        for (name, bytes) in &pages {
            let page = String::from_utf8_lossy(bytes);
            assert!(page.contains("\n.TH mhc-analyze"), "{name} has no .TH");
        }
    }

    /// A new subcommand must teach by example: its `after_help` has an `Examples:` block whose
    /// commands start with `mhc-analyze <its name>`.
    #[test]
    fn every_subcommand_has_after_help_examples_of_itself() {
        let command = built_command();
        for sub in command.get_subcommands() {
            let name = sub.get_name();
            let help = sub
                .get_after_help()
                .map(|text| text.to_string())
                .unwrap_or_default();
            let (_, examples) = help
                .split_once(EXAMPLES_MARKER)
                .unwrap_or_else(|| panic!("`{name}` has no `{EXAMPLES_MARKER}` in after_help"));
            let prefix = format!("{BIN_NAME} {name}");
            let count = examples
                .lines()
                .filter(|line| line.trim_start().starts_with(&prefix))
                .count();
            assert!(count >= 2, "`{name}` shows {count} examples of itself");
        }
    }

    #[test]
    fn unknown_subcommand_for_man_is_refused_with_the_valid_names() {
        let err = parse_subcommand("gian").unwrap_err();
        assert!(err.contains("gain") && err.contains("report"), "{err}");
        assert_eq!(parse_subcommand("audit").unwrap(), "audit");
    }
}
