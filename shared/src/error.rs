//! One error type for the suite. Every variant says whether trying again can help,
//! because that decides between "fail the SQS record so it is redelivered" and
//! "report and drop": a malformed event never gets better by retrying.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::error::SdkError;

use crate::notify::clip;

#[derive(thiserror::Error)]
pub enum Error {
    /// The payload is not an event this function understands, or lacks a field it needs.
    #[error("malformed event: {}", clip(.0, MESSAGE_MAX, false))]
    BadEvent(String),

    /// A configuration value is missing or invalid (only at cold start).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// An AWS API call failed after the SDK's own retries.
    #[error("{service}:{operation} failed ({}): {}", clip(.code, 100, false), clip(.message, MESSAGE_MAX, false))]
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

/// The variant and the capped `Display`, never the fields whole: lambda_runtime logs a
/// failed invocation's error with `{:?}`, and a `BadEvent` quotes a field that may be as
/// long as its sender likes (a derived `Debug` logged 200 KB lines).
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variant = match self {
            Error::BadEvent(_) => "BadEvent",
            Error::Config(_) => "Config",
            Error::Aws { .. } => "Aws",
        };
        write!(f, "{variant}({self})")
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
        SdkError::TimeoutError(_) => ("Timeout".into(), chain(&err), true),
        SdkError::DispatchFailure(_) => ("DispatchFailure".into(), chain(&err), true),
        SdkError::ResponseError(_) => ("ResponseError".into(), chain(&err), true),
        _ => ("ConstructionFailure".into(), chain(&err), false),
    };
    Error::Aws {
        service,
        operation,
        code,
        message,
        retryable,
    }
}

/// Longest message an error renders (logs, Lambda's error response, notifications): parse
/// errors and AWS messages quote the event, which may be as long as its sender likes.
const MESSAGE_MAX: usize = 1000;

/// The error and its sources, `Display` only. Never `{:?}`: the `Debug` of an SDK error
/// carries the raw HTTP response (every header, the body), and `DisplayErrorContext`
/// appends that `Debug` too. A chain of `Display`s holds no request, so no
/// `Authorization` header and none of the credentials that signed it.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    clip(&text, MESSAGE_MAX, false)
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
    use aws_sdk_ecs::error::ConnectorError;
    use aws_sdk_ecs::operation::stop_task::StopTaskError;

    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

    /// Stands in for the raw HTTP exchange an `SdkError` carries: its `Debug` holds what a
    /// signed request and its response may hold.
    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug only
    struct RawExchange {
        headers: Vec<(&'static str, String)>,
        body: &'static str,
    }

    fn raw_exchange() -> RawExchange {
        RawExchange {
            headers: vec![
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/ecs/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
                        .into(),
                ),
                ("x-amz-security-token", SESSION_TOKEN.into()),
            ],
            body: SECRET_KEY,
        }
    }

    fn assert_no_credentials(text: &str) {
        for needle in [
            "uthorization",
            "AKIA",
            "Signature=",
            "x-amz-security-token",
            SECRET_KEY,
            SESSION_TOKEN,
        ] {
            assert!(!text.contains(needle), "{needle:?} leaked into {text:?}");
        }
    }

    #[test]
    fn transport_errors_are_rendered_without_the_raw_exchange_or_credentials() {
        let errors: Vec<SdkError<StopTaskError, RawExchange>> = vec![
            SdkError::response_error("unexpected end of body", raw_exchange()),
            SdkError::dispatch_failure(ConnectorError::io("connection reset by peer".into())),
            SdkError::timeout_error("operation timed out after 40s"),
            SdkError::construction_failure("no credentials in the environment"),
        ];
        for err in errors {
            let e = aws("ecs", "StopTask", err);
            let shown = e.to_string();
            assert_no_credentials(&shown);
            assert_no_credentials(e.aws_message().unwrap_or_default());
            let diagnostic = lambda_runtime::Diagnostic::from(e);
            assert_no_credentials(&diagnostic.error_message);
        }
    }

    #[test]
    fn a_transport_error_still_says_what_went_wrong() {
        let e = aws(
            "ecs",
            "StopTask",
            SdkError::<StopTaskError, RawExchange>::response_error(
                "unexpected end of body",
                raw_exchange(),
            ),
        );
        assert_eq!(e.aws_code(), Some("ResponseError"));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("unexpected end of body"), "{e}");
    }

    #[test]
    fn event_text_in_an_error_is_one_capped_line() {
        let e = Error::BadEvent(format!(
            "EC2InstanceId {:?}\r\n\u{1b}[31m{}",
            "x",
            "A".repeat(10_000)
        ));
        let shown = e.to_string();
        assert!(shown.chars().count() <= "malformed event: ".len() + MESSAGE_MAX + 1);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn the_debug_form_is_capped_like_the_display() {
        let huge = "x".repeat(200_000);
        let errors = [
            Error::BadEvent(format!("EC2InstanceId {huge:?} is not an instance id")),
            Error::Aws {
                service: "ecs",
                operation: "StopTask",
                code: huge.clone(),
                message: huge,
                retryable: false,
            },
        ];
        for e in errors {
            let debug = format!("{e:?}");
            assert!(debug.chars().count() < 1_200, "{}", debug.len());
            assert!(debug.contains(&e.to_string()), "{debug}");
        }
    }

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
