//! The sans-IO rise/fall logic: turns consecutive check results into
//! state changes.

/// Rise/fall logic: turns consecutive check results into state changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HealthState {
    rise: u32,
    fall: u32,
    healthy: bool,
    /// False until the first UP transition, which needs one success only.
    been_up: bool,
    last_ok: Option<bool>,
    streak: u32,
}

impl HealthState {
    /// A new backend, DOWN until its first successful check.
    pub(super) fn new(rise: u32, fall: u32) -> Self {
        HealthState {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: false,
            been_up: false,
            last_ok: None,
            streak: 0,
        }
    }

    /// Records one check result; returns the new state if it changed.
    pub(super) fn record(&mut self, ok: bool) -> Option<bool> {
        if self.last_ok == Some(ok) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.last_ok = Some(ok);
            self.streak = 1;
        }
        let change = match (self.healthy, ok) {
            (false, true) if !self.been_up || self.streak >= self.rise => true,
            (true, false) => self.streak >= self.fall,
            _ => false,
        };
        if !change {
            return None;
        }
        self.healthy = ok;
        self.been_up |= ok;
        Some(ok)
    }

    /// Whether the backend should get traffic.
    pub(super) fn healthy(&self) -> bool {
        self.healthy
    }

    /// How many results in a row had the same outcome as the last one.
    pub(super) fn streak(&self) -> u32 {
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// string of the same length ('U' up, 'D' down, '.' none).
    fn run_sequence(rise: u32, fall: u32, results: &str) -> String {
        let mut s = HealthState::new(rise, fall);
        results
            .chars()
            .map(|c| match s.record(c == '+') {
                Some(true) => {
                    assert!(s.healthy());
                    'U'
                }
                Some(false) => {
                    assert!(!s.healthy());
                    'D'
                }
                None => '.',
            })
            .collect()
    }

    #[test]
    fn rise_fall_sequences() {
        let cases: &[(u32, u32, &str, &str)] = &[
            // First success is enough to come up, whatever `rise` is.
            (3, 3, "+", "U"),
            (3, 3, "---+", "...U"),
            // Starts DOWN: failures before the first success change nothing.
            (1, 1, "----", "...."),
            // Fall needs consecutive failures; a success resets the count.
            (2, 3, "+--+---", "U.....D"),
            (2, 2, "+-+-+--", "U.....D"),
            // After a DOWN, rise needs consecutive successes.
            (2, 2, "+--+-++", "U.D...U"),
            (3, 1, "+-++-+++", "UD.....U"),
            (1, 1, "+-+-", "UDUD"),
            // 0 behaves as 1.
            (0, 0, "+-+", "UDU"),
            // Staying in a state never re-reports it.
            (1, 1, "++++----", "U...D..."),
        ];
        for (rise, fall, input, want) in cases {
            assert_eq!(
                run_sequence(*rise, *fall, input),
                *want,
                "rise={rise} fall={fall} input={input}"
            );
        }
    }

    #[test]
    fn streak_counts_same_outcomes() {
        let mut s = HealthState::new(2, 3);
        for (ok, want) in [
            (true, 1),
            (false, 1),
            (false, 2),
            (false, 3),
            (true, 1),
            (true, 2),
        ] {
            s.record(ok);
            assert_eq!(s.streak(), want);
        }
        assert!(s.healthy());
    }
}
