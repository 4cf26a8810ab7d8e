//! One error type for the suite. Every variant says whether trying again can help,
//! because that decides between "fail the SQS record so it is redelivered" and
//! "report and drop": a malformed event never gets better by retrying.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::error::SdkError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload is not an event this function understands, or lacks a field it needs.
    #[error("malformed event: {0}")]
    BadEvent(String),

    /// A configuration value is missing or invalid (only at cold start).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// An AWS API call failed after the SDK's own retries.
    #[error("{service}:{operation} failed ({code}): {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: String,
        message: String,
        retryable: bool,
    },
}

impl Error {
    /// Whether redelivering the event may succeed where this attempt failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::BadEvent(_) | Error::Config(_) => false,
            Error::Aws { retryable, .. } => *retryable,
        }
    }

    /// The AWS error code, when this is an AWS error.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn aws_message(&self) -> Option<&str> {
        match self {
            Error::Aws { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Converts an SDK error into [`Error::Aws`], classifying it as retryable when it is a
/// throttle, a server fault, a timeout or a transport failure.
pub fn aws<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (code, message, retryable) = match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let retryable = is_retryable_code(&code);
            (code, e.message().unwrap_or_default().to_string(), retryable)
        }
        SdkError::TimeoutError(_) => ("Timeout".into(), format!("{err:?}"), true),
        SdkError::DispatchFailure(_) => ("DispatchFailure".into(), format!("{err:?}"), true),
        SdkError::ResponseError(_) => ("ResponseError".into(), format!("{err:?}"), true),
        _ => ("ConstructionFailure".into(), format!("{err:?}"), false),
    };
    Error::Aws {
        service,
        operation,
        code,
        message,
        retryable,
    }
}

fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "ServerException"
            | "ServiceException"
            | "Unknown"
    )
}

/// How a failed invocation is reported to Lambda: the type says whether a retry helps.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::BadEvent(_) => "BadEvent",
            Error::Config(_) => "ConfigError",
            Error::Aws {
                retryable: true, ..
            } => "AwsRetryable",
            Error::Aws { .. } => "AwsError",
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_string(),
            error_message: e.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_events_are_not_retryable() {
        assert!(!Error::BadEvent("x".into()).is_retryable());
    }

    #[test]
    fn throttling_and_server_faults_are_retryable_but_validation_is_not() {
        assert!(is_retryable_code("Throttling"));
        assert!(is_retryable_code("ServiceUnavailable"));
        assert!(!is_retryable_code("ValidationError"));
        assert!(!is_retryable_code("AccessDeniedException"));
    }
}
