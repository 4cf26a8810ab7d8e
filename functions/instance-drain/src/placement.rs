//! Can a service's tasks be placed on any other host? Its placement constraints (the
//! service's and its task definition's) against the other container instances of the
//! cluster, so a drain that can never finish is named on its first look.
//!
//! ```text
//! {"type": "distinctInstance"}
//! {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"}
//! ```
//!
//! Expressions are ECS's cluster query language
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html>).
//! Every answer here is three-valued: a subject or form this module does not know
//! (`task:group`, `registeredAt`, a regular expression, ...) is `None`, and an unknown
//! never becomes a claim that a service can never leave.

use std::collections::BTreeMap;

use serde::Serialize;

/// One placement constraint of a service or task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Constraint {
    /// Each task of the service on a different container instance.
    DistinctInstance,
    /// Only container instances the expression selects.
    MemberOf { expression: String },
}

impl Constraint {
    /// From the API's `type` and `expression`; another type is none of ours to judge.
    pub fn from_api(kind: &str, expression: Option<&str>) -> Option<Constraint> {
        match (kind, expression) {
            ("distinctInstance", _) => Some(Constraint::DistinctInstance),
            ("memberOf", Some(e)) => Some(Constraint::MemberOf {
                expression: e.to_string(),
            }),
            _ => None,
        }
    }
}

/// Another container instance of the cluster that ECS could place a task on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    pub ec2_instance_id: String,
    /// Built-in (`ecs.instance-type`, `ecs.availability-zone`, `ecs.ami-id`,
    /// `ecs.os-type`, `ecs.cpu-architecture`, ...) and custom attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Why no other host can take a service's tasks, if that is certain; `None` when some
/// other host can, or when an expression could not be judged.
pub fn never_placed(
    constraints: &[Constraint],
    desired_count: i32,
    others: &[Candidate],
) -> Option<String> {
    let member_of: Vec<&str> = constraints
        .iter()
        .filter_map(|c| match c {
            Constraint::MemberOf { expression } => Some(expression.as_str()),
            Constraint::DistinctInstance => None,
        })
        .collect();
    let distinct = constraints.contains(&Constraint::DistinctInstance);
    if member_of.is_empty() && !distinct {
        return None;
    }
    let (mut sure, mut maybe) = (0usize, 0usize);
    for c in others {
        let all = member_of
            .iter()
            .map(|e| evaluate(e, c))
            .try_fold(true, |acc, v| v.map(|v| acc && v));
        match all {
            Some(true) => sure += 1,
            Some(false) => {}
            None => maybe += 1,
        }
    }
    // Tasks that must find another host: all of them under distinctInstance (each on a
    // host of its own, this one leaving), else at least one.
    let needed = if distinct {
        usize::try_from(desired_count.max(1)).unwrap_or(1)
    } else {
        1
    };
    if sure + maybe >= needed {
        return None;
    }
    let rules = member_of
        .iter()
        .map(|e| format!("memberOf `{e}`"))
        .chain(distinct.then(|| "distinctInstance".to_string()))
        .collect::<Vec<_>>()
        .join(" and ");
    Some(match distinct {
        true => format!(
            "{rules}: {needed} task(s) need a host each, and {sure} other ACTIVE host(s) of the cluster qualify"
        ),
        false => format!("{rules}: no other ACTIVE host of the cluster qualifies"),
    })
}

/// Whether a cluster query language expression selects the candidate: `None` when it
/// can't be told (unknown subject or operator, or an expression that doesn't parse).
pub fn evaluate(expression: &str, candidate: &Candidate) -> Option<bool> {
    let tokens = tokens(expression)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
    };
    let expr = parser.or()?;
    if parser.at != tokens.len() {
        return None;
    }
    expr.eval(candidate)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    ListOpen,
    ListClose,
    Comma,
}

fn tokens(s: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let single = match c {
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            '[' => Some(Token::ListOpen),
            ']' => Some(Token::ListClose),
            ',' => Some(Token::Comma),
            _ => None,
        };
        if c.is_whitespace() {
            i += 1;
        } else if let Some(t) = single {
            out.push(t);
            i += 1;
        } else if matches!(
            (c, next),
            ('=', Some('=' | '~')) | ('!', Some('=' | '~')) | ('&', Some('&')) | ('|', Some('|'))
        ) {
            out.push(Token::Word(chars[i..i + 2].iter().collect()));
            i += 2;
        } else if c == '"' || c == '\'' {
            let end = chars[i + 1..].iter().position(|&x| x == c)? + i + 1;
            out.push(Token::Word(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else {
            // A word: `!` starts `!in`/`!exists` or stands alone for `not`.
            let start = i;
            i += 1;
            while i < chars.len() && !chars[i].is_whitespace() && !"()[],=!&|".contains(chars[i]) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        }
    }
    Some(out)
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        subject: String,
        op: String,
        args: Vec<String>,
    },
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn or(&mut self) -> Option<Expr> {
        let mut left = self.and()?;
        while matches!(self.peek_word(), Some("or" | "||")) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Expr> {
        let mut left = self.unary()?;
        while matches!(self.peek_word(), Some("and" | "&&")) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Expr> {
        match self.tokens.get(self.at)? {
            Token::Word(w) if w == "not" || w == "!" => {
                self.at += 1;
                Some(Expr::Not(Box::new(self.unary()?)))
            }
            Token::Open => {
                self.at += 1;
                let inner = self.or()?;
                (self.tokens.get(self.at) == Some(&Token::Close)).then_some(())?;
                self.at += 1;
                Some(inner)
            }
            Token::Word(subject) => {
                let subject = subject.clone();
                self.at += 1;
                let op = self.peek_word()?.to_string();
                self.at += 1;
                let args = match op.as_str() {
                    "exists" | "!exists" => vec![],
                    _ => self.argument()?,
                };
                Some(Expr::Compare { subject, op, args })
            }
            _ => None,
        }
    }

    fn argument(&mut self) -> Option<Vec<String>> {
        match self.tokens.get(self.at)? {
            Token::Word(w) => {
                self.at += 1;
                Some(vec![w.clone()])
            }
            Token::ListOpen => {
                self.at += 1;
                let mut values = vec![];
                loop {
                    values.push(self.peek_word()?.to_string());
                    self.at += 1;
                    match self.tokens.get(self.at)? {
                        Token::Comma => self.at += 1,
                        Token::ListClose => {
                            self.at += 1;
                            return Some(values);
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

impl Expr {
    fn eval(&self, c: &Candidate) -> Option<bool> {
        match self {
            Expr::And(a, b) => match (a.eval(c), b.eval(c)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (a.eval(c), b.eval(c)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::Not(a) => a.eval(c).map(|v| !v),
            Expr::Compare { subject, op, args } => compare(subject, op, args, c),
        }
    }
}

fn compare(subject: &str, op: &str, args: &[String], c: &Candidate) -> Option<bool> {
    let value: Option<&str> = if let Some(name) = subject.strip_prefix("attribute:") {
        c.attributes.get(name).map(String::as_str)
    } else if subject == "ec2InstanceId" {
        Some(c.ec2_instance_id.as_str())
    } else {
        return None; // task:group, registeredAt, agentVersion, ...: not judged here
    };
    let matches_any = |v: &str| -> Option<bool> {
        let mut any = false;
        for a in args {
            any |= matches_pattern(a, v)?;
        }
        Some(any)
    };
    match (op, value) {
        ("exists", _) => Some(value.is_some()),
        ("!exists" | "not_exists", _) => Some(value.is_none()),
        // A missing attribute equals and matches nothing.
        ("==" | "equals" | "in" | "=~" | "matches", None) => Some(false),
        ("==" | "equals" | "in", Some(v)) => Some(args.iter().any(|a| a == v)),
        ("=~" | "matches", Some(v)) => matches_any(v),
        ("!=" | "not_equals" | "not_in" | "!in", Some(v)) => Some(!args.iter().any(|a| a == v)),
        ("!~" | "not_matches", Some(v)) => matches_any(v).map(|m| !m),
        // A negation over a missing attribute (whether ECS selects the host is not
        // documented), or an operator not judged here.
        _ => None,
    }
}

/// `=~` with a trailing `*` (`t3.*`, `m5*`): read as a glob the prefix before the `*`,
/// read as a regular expression the `.` before it matches any character. Only an
/// answer both readings agree on is given.
fn matches_pattern(pattern: &str, value: &str) -> Option<bool> {
    let literal = pattern.strip_suffix('*')?;
    if literal.chars().any(|c| "*?+[](){}^$|\\".contains(c)) {
        return None;
    }
    let glob = value.starts_with(literal);
    let regex = match literal.strip_suffix('.') {
        // `t3.*` as a regular expression: `t3` then anything.
        Some(stem) if !stem.contains('.') => value.starts_with(stem),
        // `m5*`: `m` then any number of `5` — not judged.
        None => return None,
        Some(_) => return None,
    };
    (glob == regex).then_some(glob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, attrs: &[(&str, &str)]) -> Candidate {
        Candidate {
            ec2_instance_id: id.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn t3a() -> Candidate {
        host(
            "i-1",
            &[
                ("ecs.instance-type", "t3.micro"),
                ("ecs.availability-zone", "us-east-1a"),
                ("ecs.os-type", "linux"),
                ("ecs.cpu-architecture", "x86_64"),
                ("stack", "prod"),
            ],
        )
    }

    #[test]
    fn simple_comparisons_over_attributes() {
        let h = t3a();
        assert_eq!(
            evaluate("attribute:ecs.instance-type == t3.micro", &h),
            Some(true)
        );
        assert_eq!(
            evaluate("attribute:ecs.instance-type equals m5.large", &h),
            Some(false)
        );
        assert_eq!(
            evaluate("attribute:ecs.availability-zone != us-east-1b", &h),
            Some(true)
        );
        assert_eq!(
            evaluate(
                "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
                &h
            ),
            Some(true)
        );
        assert_eq!(
            evaluate("attribute:ecs.availability-zone not_in [us-east-1a]", &h),
            Some(false)
        );
        assert_eq!(evaluate("attribute:stack exists", &h), Some(true));
        assert_eq!(evaluate("attribute:team exists", &h), Some(false));
        assert_eq!(evaluate("ec2InstanceId == i-1", &h), Some(true));
    }

    #[test]
    fn and_or_not_and_parentheses() {
        let h = t3a();
        assert_eq!(
            evaluate(
                "attribute:ecs.instance-type =~ t3.* and attribute:stack == prod",
                &h
            ),
            Some(true)
        );
        assert_eq!(
            evaluate(
                "attribute:stack == dev || (attribute:ecs.os-type == linux && !(attribute:ecs.cpu-architecture == arm64))",
                &h
            ),
            Some(true)
        );
        assert_eq!(evaluate("not attribute:stack == prod", &h), Some(false));
    }

    #[test]
    fn what_cannot_be_judged_is_unknown_never_false() {
        let h = t3a();
        // Subjects the drain does not know.
        assert_eq!(evaluate("task:group == service:web", &h), None);
        assert_eq!(evaluate("registeredAt >= 2018-06-18", &h), None);
        // Regular expressions beyond a trailing wildcard.
        assert_eq!(evaluate("attribute:ecs.instance-type =~ t[23].*", &h), None);
        // A negation over a missing attribute.
        assert_eq!(evaluate("attribute:team != blue", &h), None);
        // Garbage.
        assert_eq!(evaluate("attribute:stack ==", &h), None);
        assert_eq!(evaluate("(attribute:stack == prod", &h), None);
        // An unknown part decides nothing unless the rest already does.
        assert_eq!(
            evaluate("task:group == x and attribute:stack == dev", &h),
            Some(false)
        );
        assert_eq!(
            evaluate("task:group == x or attribute:stack == dev", &h),
            None
        );
    }

    #[test]
    fn a_trailing_wildcard_is_judged_only_where_glob_and_regex_agree() {
        let t3 = host("i", &[("ecs.instance-type", "t3.micro")]);
        let t3a = host("i", &[("ecs.instance-type", "t3a.micro")]);
        let m5 = host("i", &[("ecs.instance-type", "m5.large")]);
        let pattern = "attribute:ecs.instance-type =~ t3.*";
        assert_eq!(evaluate(pattern, &t3), Some(true));
        assert_eq!(evaluate(pattern, &m5), Some(false));
        // `t3.*` as a regular expression also selects t3a; as a glob it does not.
        assert_eq!(evaluate(pattern, &t3a), None);
    }

    #[test]
    fn member_of_that_no_other_host_meets_can_never_be_placed() {
        let others = [t3a(), host("i-2", &[("ecs.instance-type", "m5.large")])];
        let gpu = [Constraint::MemberOf {
            expression: "attribute:ecs.instance-type =~ g5.*".into(),
        }];
        let why = never_placed(&gpu, 2, &others).expect("no other host is a g5");
        assert!(why.contains("g5"), "{why}");
        let t3 = [Constraint::MemberOf {
            expression: "attribute:ecs.instance-type == t3.micro".into(),
        }];
        assert_eq!(never_placed(&t3, 2, &others), None);
        assert_eq!(never_placed(&[], 2, &[]), None);
    }

    #[test]
    fn distinct_instance_needs_a_host_for_each_task() {
        let others = [t3a(), host("i-2", &[])];
        let distinct = [Constraint::DistinctInstance];
        assert_eq!(never_placed(&distinct, 2, &others), None);
        let why = never_placed(&distinct, 3, &others).unwrap();
        assert!(
            why.contains("3 task(s)") && why.contains("2 other"),
            "{why}"
        );
        // Together with memberOf only the hosts it selects count.
        let both = [
            Constraint::DistinctInstance,
            Constraint::MemberOf {
                expression: "attribute:stack == prod".into(),
            },
        ];
        assert!(never_placed(&both, 2, &others).is_some());
    }

    #[test]
    fn an_unknown_host_keeps_the_claim_from_being_made() {
        let others = [t3a()];
        let unknowable = [Constraint::MemberOf {
            expression: "task:group == service:db".into(),
        }];
        assert_eq!(never_placed(&unknowable, 1, &others), None);
        // No other host at all: nothing to be unsure about.
        assert!(never_placed(&unknowable, 1, &[]).is_some());
    }
}
