//! Why a run completed (almost) nothing: one sentence naming what the connections
//! were waiting for.
//!
//! A run whose every connection waits on an answer that never matches ends with
//! "completed 0" and "errors 0", which reads like success. The counters already
//! say where the connections stopped, so the report says it in words.

use crate::plan::{Mode, Plan};
use crate::stats::Counters;

/// Below this share of the requests sent, a run counts as having completed
/// (almost) nothing.
const TOO_FEW: f64 = 0.01;

/// The sentence for a request-mode run (or a connect-mode run that exchanges a
/// message) that completed nothing or fewer than 1% of the requests it sent;
/// `None` for a run that completed its share, and for the modes that send no
/// requests.
pub fn stalled(counters: &Counters, plan: &Plan) -> Option<String> {
    let sends_requests = matches!(plan.mode, Mode::Request | Mode::Connect { exchange: true });
    let c = counters;
    if !sends_requests || (c.requests_completed > 0 && c.requests_completed as f64 >= TOO_FEW * c.requests_sent as f64)
    {
        return None;
    }
    let completed = format!("completed {} of {} requests sent", c.requests_completed, c.requests_sent);
    let waiting = if c.conns_established == 0 {
        format!(
            "the connections were waiting for a connect ({} attempted, {} failed, none established)",
            c.conns_attempted, c.conns_failed
        )
    } else if c.requests_sent == 0 && plan.payload.first.is_some() {
        format!(
            "the connections were waiting for the answer to --first-message ({} established, no request sent after it)",
            c.conns_established
        )
    } else if c.requests_sent == 0 {
        "no request was sent: none was due (a rate too low for the duration?)".to_string()
    } else {
        format!(
            "the connections were waiting for responses ({} bytes received); check --expect against what the server sends",
            c.bytes_received
        )
    };
    Some(format!("{completed}: {waiting}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{Payload, Template};
    use std::sync::Arc;

    fn plan() -> Plan {
        Plan::new(vec!["127.0.0.1:1".parse().unwrap()])
    }

    fn counters(established: u64, sent: u64, completed: u64) -> Counters {
        Counters {
            conns_attempted: 10,
            conns_failed: 10 - established.min(10),
            conns_established: established,
            requests_sent: sent,
            requests_completed: completed,
            ..Counters::default()
        }
    }

    #[test]
    fn a_run_that_completed_its_share_says_nothing() {
        assert_eq!(stalled(&counters(10, 1000, 1000), &plan()), None);
        assert_eq!(stalled(&counters(10, 1000, 10), &plan()), None, "1% is enough");
    }

    #[test]
    fn no_connect_names_the_connect() {
        let line = stalled(&counters(0, 0, 0), &plan()).unwrap();
        assert!(line.contains("waiting for a connect") && line.contains("10 attempted"), "{line}");
    }

    #[test]
    fn no_answer_to_the_first_message_names_it() {
        let mut plan = plan();
        let first = Template::raw(b"AUTH x\r\n".to_vec());
        plan.payload = Arc::new(Payload::new(vec![Template::raw(b"PING\r\n".to_vec())], Some(first)).unwrap());
        let line = stalled(&counters(10, 0, 0), &plan).unwrap();
        assert!(line.contains("--first-message"), "{line}");
    }

    #[test]
    fn unanswered_requests_name_the_responses() {
        let line = stalled(&counters(10, 1000, 9), &plan()).unwrap();
        assert!(
            line.starts_with("completed 9 of 1000 requests sent") && line.contains("waiting for responses"),
            "{line}"
        );
    }

    #[test]
    fn modes_without_requests_are_not_judged() {
        let mut plan = plan();
        plan.mode = Mode::Stream;
        assert_eq!(stalled(&counters(10, 0, 0), &plan), None);
    }
}
