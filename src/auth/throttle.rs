//! Login throttling: too many failed logins from one client address → 429.
//!
//! A fixed window per address: after [`LOGIN_FAILURES_MAX`] failures within
//! [`LOGIN_FAILURE_WINDOW_SECS`], further attempts are refused until the window ends
//! (the 429 says when, in `Retry-After`). A success clears the address. The table is
//! bounded; when it is full, expired windows are dropped first, and if every entry is
//! live a new address is not tracked (the service stays available rather than
//! locking everyone out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use orderflow_actors::limits::{
    LOGIN_FAILURE_WINDOW_SECS, LOGIN_FAILURES_MAX, LOGIN_THROTTLE_CLIENTS_MAX,
};

#[derive(Debug)]
pub struct LoginThrottle {
    clients: Mutex<HashMap<IpAddr, Window>>,
    failures_max: u32,
    window: Duration,
    clients_max: usize,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(
            LOGIN_FAILURES_MAX,
            Duration::from_secs(LOGIN_FAILURE_WINDOW_SECS),
            LOGIN_THROTTLE_CLIENTS_MAX,
        )
    }
}

impl LoginThrottle {
    pub fn new(failures_max: u32, window: Duration, clients_max: usize) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            failures_max,
            window,
            clients_max,
        }
    }

    /// `Err(seconds to wait)` when `client` is throttled right now.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        match clients.get(&client) {
            Some(w) if w.failures >= self.failures_max && now < w.started + self.window => {
                Err((w.started + self.window - now).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, client: IpAddr, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if !clients.contains_key(&client) && clients.len() >= self.clients_max {
            let window = self.window;
            clients.retain(|_, w| now < w.started + window);
            if clients.len() >= self.clients_max {
                return;
            }
        }
        let w = clients.entry(client).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures += 1;
    }

    pub fn succeeded(&self, client: IpAddr) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_until_the_window_ends() {
        let t = LoginThrottle::new(3, Duration::from_secs(60), 10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.check(ip, now).is_ok());
            t.failed(ip, now);
        }
        assert_eq!(t.check(ip, now), Err(60));
        assert!(t.check(other, now).is_ok(), "per client");
        assert!(
            t.check(ip, now + Duration::from_secs(61)).is_ok(),
            "window ends"
        );
        t.succeeded(ip);
        assert!(t.check(ip, now).is_ok(), "success clears");
    }

    #[test]
    fn table_is_bounded() {
        let t = LoginThrottle::new(1, Duration::from_secs(60), 2);
        let now = Instant::now();
        for i in 0..5u8 {
            t.failed(IpAddr::from([10, 0, 0, i]), now);
        }
        assert_eq!(t.clients.lock().unwrap().len(), 2);
    }
}
