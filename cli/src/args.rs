//! The command line, parsed by hand (two subcommands and four options need no parser
//! crate in the build).

pub const USAGE: &str = "\
ecs-autopilot: what ecs-autopilot manages, what it is doing, and what it would do now

Usage:
  ecs-autopilot status [--json] [--region REGION] [--profile PROFILE]
  ecs-autopilot plan   [--json] [--region REGION] [--profile PROFILE]

Commands:
  status   the managed clusters and groups; per group: AMI drift, refresh in progress,
           instances held by a lifecycle hook, quarantined hosts, retirements scheduled,
           paused rollouts
  plan     what the functions would do now, from their own decide code (reads only):
           which groups the next scheduled ami-rollout check rolls, in what order, and
           which wait for the maintenance window or the rollout budget

Options:
  --json              one JSON document on stdout (shape: docs/cli.md)
  --region REGION     the Region to look at (default: the standard AWS configuration)
  --profile PROFILE   the named profile to use (default: the standard credential chain)
  -h, --help          this text

Credentials and Region come from the standard AWS chain (environment, ~/.aws, SSO, web
identity, container and instance roles); AWS_ENDPOINT_URL points it at an emulator.
`plan` decides with ami-rollout's settings from the environment, under the names the
function reads (MAINTENANCE_WINDOW, MAX_CONCURRENT_ROLLOUTS, DEFAULT_AMI_PARAMETER, ...).

Exit status: 0 done, 1 an AWS call failed, 2 bad usage or settings, 3 nothing managed
in the Region, 4 no credentials or no Region, 5 throttled by AWS.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Status,
    Plan,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub json: bool,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Args, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut command = None;
    let mut json = false;
    let mut region = None;
    let mut profile = None;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .filter(|v| !v.is_empty() && !v.starts_with("--"))
                .ok_or_else(|| format!("{what} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" | "help" => command = Some(Command::Help),
            "--json" => json = true,
            "--region" => region = Some(value("--region")?),
            "--profile" => profile = Some(value("--profile")?),
            "status" | "plan" if command.is_none() => {
                command = Some(if name == "status" {
                    Command::Status
                } else {
                    Command::Plan
                })
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Args {
        command: command.ok_or("a command is needed: status or plan")?,
        json,
        region,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = parse(["--region", "eu-west-1", "status", "--json", "--profile=ops"]).unwrap();
        assert_eq!(a.command, Command::Status);
        assert!(a.json);
        assert_eq!(a.region.as_deref(), Some("eu-west-1"));
        assert_eq!(a.profile.as_deref(), Some("ops"));
        assert_eq!(parse(["plan"]).unwrap().command, Command::Plan);
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        assert!(parse(Vec::<String>::new())
            .unwrap_err()
            .contains("status or plan"));
        assert!(parse(["status", "--region"])
            .unwrap_err()
            .contains("--region"));
        assert!(parse(["status", "--region", "--json"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(["status", "--bogus"])
            .unwrap_err()
            .contains("--bogus"));
        assert!(parse(["status", "plan"]).unwrap_err().contains("plan"));
        assert_eq!(parse(["--help"]).unwrap().command, Command::Help);
    }
}
