//! `ecs-autopilot`: the operator's view. `status` says what ecs-autopilot manages and
//! what it is in the middle of; `plan` says what the functions would do now, from their
//! own decide code. Both only read.

mod args;
mod plan;
mod render;
mod status;

use std::process::ExitCode;

use aws_config::Region;
use aws_credential_types::provider::ProvideCredentials;
use chrono::Utc;
use shared::aws::Aws;
use shared::config::Env;

use args::Command;

/// Why the command stopped, with the exit status it gives.
enum Failure {
    Usage(String),
    NothingManaged(String),
    Credentials(String),
    Throttled(String),
    Aws(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Aws(_) => 1,
            Failure::Usage(_) => 2,
            Failure::NothingManaged(_) => 3,
            Failure::Credentials(_) => 4,
            Failure::Throttled(_) => 5,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Usage(m)
            | Failure::NothingManaged(m)
            | Failure::Credentials(m)
            | Failure::Throttled(m)
            | Failure::Aws(m) => m,
        }
    }
}

/// AWS errors that mean "slow down" (the SDK already retried them with backoff).
const THROTTLES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
];

fn aws_failure(e: shared::Error) -> Failure {
    let code = e.aws_code().unwrap_or_default();
    if THROTTLES.contains(&code) {
        return Failure::Throttled(format!(
            "AWS is throttling: {e}. The call was retried 5 times with backoff; the account's API rate is shared with ecs-autopilot's functions and every other tool. Wait a minute and run it again."
        ));
    }
    if matches!(
        code,
        "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "AuthFailure"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "SignatureDoesNotMatch"
    ) {
        return Failure::Credentials(format!(
            "AWS refused the credentials: {e}. Refresh them (aws sso login, a new session) or pick another --profile."
        ));
    }
    Failure::Aws(format!("an AWS call failed: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ecs-autopilot: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if args.command == Command::Help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    match run(&args).await {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("ecs-autopilot: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

async fn run(args: &args::Args) -> Result<String, Failure> {
    let mut loader = shared::aws::sdk_defaults();
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
        Failure::Credentials(
            "no AWS Region: pass --region, set AWS_REGION, or give the profile a region".into(),
        )
    })?;
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| Failure::Credentials("no AWS credentials provider is configured".into()))?;
    if let Err(e) = provider.provide_credentials().await {
        return Err(Failure::Credentials(format!(
            "no AWS credentials{}: {e}. The standard chain was searched (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile in ~/.aws/config and ~/.aws/credentials, SSO, web identity, container and instance roles); run `aws configure` or `aws sso login`, or pass --profile.",
            args.profile.as_deref().map(|p| format!(" for profile {p}")).unwrap_or_default()
        )));
    }
    let deps = deps(sdk)?;
    let now = Utc::now();
    let status = match status::status(&deps, &region, now).await.map_err(aws_failure)? {
        Ok(s) => s,
        Err(status::NothingManaged) => {
            return Err(Failure::NothingManaged(format!(
                "nothing managed in {region}: no ECS cluster is tagged ecs-autopilot:managed=true and no Auto Scaling group is tagged ecs-autopilot:cluster. Wrong --region or --profile? (README: Opt-in tags)"
            )))
        }
    };
    match args.command {
        Command::Status if args.json => Ok(pretty(&status)),
        Command::Status => Ok(render::status(&status)),
        Command::Plan => {
            let plan = plan::plan(&deps, &status, now).await.map_err(aws_failure)?;
            Ok(if args.json {
                pretty(&plan)
            } else {
                render::plan(&plan)
            })
        }
        Command::Help => Ok(String::new()),
    }
}

/// ami-rollout's dependencies, with its settings from the environment (the names the
/// function reads). The CLI never notifies or acts: the topic is a placeholder and the
/// run is a dry run.
fn deps(sdk: aws_config::SdkConfig) -> Result<ami_rollout::Deps, Failure> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    if !vars.iter().any(|(k, _)| k == "NOTIFY_TOPIC_ARN") {
        vars.push((
            "NOTIFY_TOPIC_ARN".into(),
            "arn:aws:sns:none:000000000000:ecs-autopilot-cli".into(),
        ));
    }
    vars.retain(|(k, _)| k != "DRY_RUN");
    vars.push(("DRY_RUN".into(), "true".into()));
    let config = ami_rollout::config::Config::from_env(&Env::from_pairs(vars))
        .map_err(|e| Failure::Usage(format!("ami-rollout's settings: {e}")))?;
    Ok(ami_rollout::Deps::new(&Aws::from_sdk_config(sdk), &config))
}

/// One JSON document, pretty, with a final newline.
fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}
