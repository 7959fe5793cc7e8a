//! Throttling of password guesses and registrations.
//!
//! Logins are counted per client address and per account, in fixed windows.
//!
//! - **Per account**, an attempt *reserves* its place before the password is
//!   hashed: the reservation counts as a failure at once, under one lock, so a
//!   burst of concurrent guesses at one account cannot slip past its limit while
//!   their hashes run, and a throttled attempt never reaches argon2.
//! - **Per client**, failures are counted once they happened, and the attempts
//!   being checked at once are bounded apart from them
//!   ([`Limits::in_flight_per_client`], contract §11): a burst of right passwords
//!   from one address (an office behind one NAT at 9:00) is not refused, and a
//!   burst of guesses from one address is bounded by the failures so far plus the
//!   attempts in flight.
//!
//! A success takes back its own reservation and clears what that client had
//! failed against that same account, nothing else: a good login to one account
//! never wipes the count of guesses at another. An [`Attempt`] that is dropped
//! without a verdict (an error, a panic, a plain wrong password) stands as a
//! failure.
//!
//! Registrations are counted per client address (each one costs a hash).
//!
//! Every table is bounded; when one is full, expired windows are dropped first, and
//! if every entry is live a new key is not tracked (the service stays available
//! rather than locking everyone out).
//!
//! Why one file: the throttle's rules and their unit tests, including the model
//! test of concurrent attempts, belong together.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use orderflow_actors::domain::UserId;
use orderflow_actors::limits::{
    LOGIN_ACCOUNT_FAILURES_MAX, LOGIN_FAILURE_WINDOW_SECS, LOGIN_FAILURES_MAX,
    LOGIN_THROTTLE_ACCOUNTS_MAX, LOGIN_THROTTLE_CLIENTS_MAX, LOGINS_IN_FLIGHT_PER_CLIENT_MAX,
    REGISTRATION_WINDOW_SECS,
};

/// Which account a login is for: a known user, or the name given for an unknown
/// one (so guessing at names is counted too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    User(UserId),
    Unknown(String),
}

/// Bounds of one throttle.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures one client may have in a window.
    pub per_client: u32,
    /// Attempts one client may have being checked at once.
    pub in_flight_per_client: u32,
    /// Failures one account may have in a window, from all clients.
    pub per_account: u32,
    pub window: Duration,
    /// Keys each table tracks at most.
    pub keys_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_client: LOGIN_FAILURES_MAX,
            in_flight_per_client: LOGINS_IN_FLIGHT_PER_CLIENT_MAX,
            per_account: LOGIN_ACCOUNT_FAILURES_MAX,
            window: Duration::from_secs(LOGIN_FAILURE_WINDOW_SECS),
            keys_max: LOGIN_THROTTLE_CLIENTS_MAX.max(LOGIN_THROTTLE_ACCOUNTS_MAX),
        }
    }
}

/// A count that starts over when its window ends.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            count: 0,
        }
    }

    fn live(&self, now: Instant, length: Duration) -> bool {
        now < self.started + length
    }

    fn seconds_left(&self, now: Instant, length: Duration) -> u64 {
        (self.started + length)
            .saturating_duration_since(now)
            .as_secs()
            .max(1)
    }
}

/// Bounded map of windows.
#[derive(Debug)]
struct Windows<K> {
    map: HashMap<K, Window>,
    length: Duration,
    keys_max: usize,
}

impl<K: Eq + Hash + Clone> Windows<K> {
    fn new(length: Duration, keys_max: usize) -> Self {
        Self {
            map: HashMap::new(),
            length,
            keys_max,
        }
    }

    /// The live window of `key`, started now if it had none (or it expired);
    /// `None` when the table is full of live windows.
    fn entry(&mut self, key: &K, now: Instant) -> Option<&mut Window> {
        if !self.map.contains_key(key) && self.map.len() >= self.keys_max {
            let length = self.length;
            self.map.retain(|_, w| w.live(now, length));
            if self.map.len() >= self.keys_max {
                return None;
            }
        }
        let length = self.length;
        let w = self
            .map
            .entry(key.clone())
            .or_insert_with(|| Window::new(now));
        if !w.live(now, length) {
            *w = Window::new(now);
        }
        Some(w)
    }

    fn count(&self, key: &K, now: Instant) -> u32 {
        self.map
            .get(key)
            .filter(|w| w.live(now, self.length))
            .map_or(0, |w| w.count)
    }
}

#[derive(Debug)]
struct State {
    clients: Windows<IpAddr>,
    accounts: Windows<Account>,
    /// What each client has failed against each account in the client's
    /// current window: what that account's success takes back.
    by_pair: HashMap<(IpAddr, Account), (Instant, u32)>,
    /// Attempts of each client being checked now (no entry: none).
    in_flight: HashMap<IpAddr, u32>,
}

/// The login throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    state: Mutex<State>,
    limits: Limits,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// A login attempt that passed the throttle: in flight for its client, and
/// counted as a failure against its account, until it is reported. Dropped
/// without [`Attempt::succeeded`] or [`Attempt::not_attempted`], it stands as a
/// failure.
#[derive(Debug)]
#[must_use = "report the outcome with succeeded(), or let it stand as a failure"]
pub struct Attempt<'t> {
    throttle: &'t LoginThrottle,
    client: IpAddr,
    account: Account,
    reported: bool,
}

impl Attempt<'_> {
    /// The password was right: its reservation, and every failure this client
    /// had against this account in its window, are taken back; other accounts'
    /// counts are untouched.
    pub fn succeeded(mut self, now: Instant) {
        self.reported = true;
        self.throttle
            .end(&self.client, &self.account, Verdict::Succeeded, now);
    }

    /// The password was wrong (what dropping the attempt says too, at the time
    /// of the drop).
    pub fn failed(mut self, now: Instant) {
        self.reported = true;
        self.throttle
            .end(&self.client, &self.account, Verdict::Failed, now);
    }

    /// The attempt never got to check the password (the hashing pool was full):
    /// only its own reservation is taken back.
    pub fn not_attempted(mut self, now: Instant) {
        self.reported = true;
        self.throttle
            .end(&self.client, &self.account, Verdict::NotAttempted, now);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.throttle
                .end(&self.client, &self.account, Verdict::Failed, Instant::now());
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Succeeded,
    Failed,
    NotAttempted,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            state: Mutex::new(State {
                clients: Windows::new(limits.window, limits.keys_max),
                accounts: Windows::new(limits.window, limits.keys_max),
                by_pair: HashMap::new(),
                in_flight: HashMap::new(),
            }),
            limits,
        }
    }

    /// Takes a place for one login attempt: in flight for `client`, and counted
    /// as a failure against `account` until it is reported otherwise;
    /// `Err(seconds to wait)` when the client has used up its failures or its
    /// attempts in flight, or the account its window.
    pub fn reserve(
        &self,
        client: IpAddr,
        account: Account,
        now: Instant,
    ) -> Result<Attempt<'_>, u64> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State {
            clients,
            accounts,
            in_flight,
            ..
        } = &mut *st;
        let length = self.limits.window;
        if let Some(w) = clients.map.get(&client)
            && w.live(now, length)
            && w.count >= self.limits.per_client
        {
            return Err(w.seconds_left(now, length));
        }
        if in_flight.get(&client).copied().unwrap_or(0) >= self.limits.in_flight_per_client {
            return Err(1);
        }
        if let Some(w) = accounts.map.get(&account)
            && w.live(now, length)
            && w.count >= self.limits.per_account
        {
            return Err(w.seconds_left(now, length));
        }
        if let Some(w) = accounts.entry(&account, now) {
            w.count += 1;
        }
        *in_flight.entry(client).or_insert(0) += 1;
        Ok(Attempt {
            throttle: self,
            client,
            account,
            reported: false,
        })
    }

    /// Ends an attempt of `client` at `account` with `verdict`.
    fn end(&self, client: &IpAddr, account: &Account, verdict: Verdict, now: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State {
            clients,
            accounts,
            by_pair,
            in_flight,
        } = &mut *st;
        if let Some(n) = in_flight.get_mut(client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.remove(client);
            }
        }
        let length = self.limits.window;
        let mut take_back_from_account = 0;
        match verdict {
            Verdict::Failed => {
                // The reservation stands as the account's failure; the client
                // counts it now, and remembers it against this account.
                if let Some(w) = clients.entry(client, now) {
                    w.count += 1;
                    let started = w.started;
                    if by_pair.len() >= self.limits.keys_max {
                        by_pair.retain(|_, (s, _)| now < *s + length);
                    }
                    if by_pair.len() < self.limits.keys_max {
                        let pair = by_pair
                            .entry((*client, account.clone()))
                            .or_insert((started, 0));
                        if pair.0 != started {
                            // The client's window started over: so does the pair's.
                            *pair = (started, 0);
                        }
                        pair.1 += 1;
                    }
                }
            }
            Verdict::NotAttempted => take_back_from_account = 1,
            Verdict::Succeeded => {
                take_back_from_account = 1;
                if let Some((started, n)) = by_pair.remove(&(*client, account.clone())) {
                    if let Some(w) = clients.map.get_mut(client)
                        && w.started == started
                        && w.live(now, length)
                    {
                        w.count = w.count.saturating_sub(n);
                    }
                    take_back_from_account += n;
                }
            }
        }
        if let Some(w) = accounts.map.get_mut(account)
            && w.live(now, length)
        {
            w.count = w.count.saturating_sub(take_back_from_account);
        }
    }

    /// Attempts of `client` being checked right now.
    pub fn in_flight(&self, client: IpAddr) -> u32 {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.in_flight.get(&client).copied().unwrap_or(0)
    }

    /// Failures counted against `client` right now.
    pub fn client_count(&self, client: IpAddr, now: Instant) -> u32 {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.clients.count(&client, now)
    }

    /// Failures (and pending attempts) counted against `account` right now.
    pub fn account_count(&self, account: &Account, now: Instant) -> u32 {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.accounts.count(account, now)
    }
}

/// Registrations per client address: each costs a password hash.
#[derive(Debug)]
pub struct RegisterThrottle {
    clients: Mutex<Windows<IpAddr>>,
    per_client: u32,
}

impl RegisterThrottle {
    pub fn new(per_client: u32) -> Self {
        Self {
            clients: Mutex::new(Windows::new(
                Duration::from_secs(REGISTRATION_WINDOW_SECS),
                LOGIN_THROTTLE_CLIENTS_MAX,
            )),
            per_client,
        }
    }

    /// Counts one registration attempt of `client`; `Err(seconds to wait)` past the
    /// limit.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let length = clients.length;
        match clients.entry(&client, now) {
            Some(w) if w.count >= self.per_client => Err(w.seconds_left(now, length)),
            Some(w) => {
                w.count += 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(per_client: u32, per_account: u32) -> Limits {
        Limits {
            per_client,
            in_flight_per_client: LOGINS_IN_FLIGHT_PER_CLIENT_MAX,
            per_account,
            window: Duration::from_secs(60),
            keys_max: 1000,
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn user(n: u64) -> Account {
        Account::User(UserId(n))
    }

    #[test]
    fn throttles_after_the_limit_until_the_window_ends() {
        let t = LoginThrottle::new(limits(3, 100));
        let now = Instant::now();
        for _ in 0..3 {
            let _failed = t.reserve(ip(1), user(1), now).unwrap();
        }
        assert_eq!(t.reserve(ip(1), user(2), now).unwrap_err(), 60);
        assert!(t.reserve(ip(2), user(1), now).is_ok(), "per client");
        assert!(
            t.reserve(ip(1), user(1), now + Duration::from_secs(61))
                .is_ok(),
            "window ends"
        );
    }

    /// Regression: nine wrong admin passwords, one good login to another account,
    /// repeated, used to guess forever.
    #[test]
    fn a_success_on_one_account_does_not_clear_guesses_at_another() {
        let t = LoginThrottle::new(limits(10, 100));
        let now = Instant::now();
        let mut refused = 0;
        for _round in 0..3 {
            for _ in 0..9 {
                match t.reserve(ip(1), user(1), now) {
                    Ok(_failed) => {}
                    Err(_) => refused += 1,
                }
            }
            if let Ok(good) = t.reserve(ip(1), user(2), now) {
                good.succeeded(now);
            }
        }
        assert!(refused > 0, "the guesses at account 1 add up");
        assert_eq!(t.client_count(ip(1), now), 10);
    }

    #[test]
    fn a_success_clears_that_clients_failures_on_that_account_only() {
        let t = LoginThrottle::new(limits(10, 10));
        let now = Instant::now();
        for _ in 0..4 {
            let _ = t.reserve(ip(1), user(1), now).unwrap();
        }
        for _ in 0..3 {
            let _ = t.reserve(ip(2), user(1), now).unwrap();
        }
        let _ = t.reserve(ip(1), user(3), now).unwrap();
        let good = t.reserve(ip(1), user(1), now).unwrap();
        good.succeeded(now);
        assert_eq!(
            t.client_count(ip(1), now),
            1,
            "only the user(3) failure stays"
        );
        assert_eq!(t.account_count(&user(1), now), 3, "ip(2)'s guesses stay");
    }

    #[test]
    fn an_account_is_throttled_across_clients() {
        let t = LoginThrottle::new(limits(100, 5));
        let now = Instant::now();
        for n in 0..5 {
            let _ = t.reserve(ip(n), user(7), now).unwrap();
        }
        assert!(t.reserve(ip(9), user(7), now).is_err());
        assert!(t.reserve(ip(9), user(8), now).is_ok());
    }

    /// Concurrent attempts at one account reserve under one lock: no burst of
    /// guesses overshoots the account's limit.
    #[test]
    fn concurrent_guesses_at_an_account_never_overshoot() {
        let t = std::sync::Arc::new(LoginThrottle::new(limits(1000, 10)));
        let now = Instant::now();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let t = std::sync::Arc::clone(&t);
                let b = std::sync::Arc::clone(&barrier);
                std::thread::spawn(move || {
                    b.wait();
                    t.reserve(ip(1), user(1), now).is_ok()
                })
            })
            .collect();
        let passed = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(passed, 10);
    }

    /// Contract §11: a burst of right passwords from one address (an office
    /// behind one NAT) is not refused up to the bound in flight, whatever the
    /// failure limit; past that bound, attempts wait for others to end.
    #[test]
    fn logins_in_flight_from_one_client_are_bounded_apart_from_failures() {
        let now = Instant::now();
        let t = LoginThrottle::new(limits(10, 1000));
        let held: Vec<_> = (0..40u64)
            .map(|n| {
                t.reserve(ip(1), user(n), now)
                    .expect("in flight, not failed")
            })
            .collect();
        assert_eq!(t.in_flight(ip(1)), 40);
        for attempt in held {
            attempt.succeeded(now);
        }
        assert_eq!((t.in_flight(ip(1)), t.client_count(ip(1), now)), (0, 0));
        let t = LoginThrottle::new(Limits {
            in_flight_per_client: 8,
            ..limits(10, 1000)
        });
        let held: Vec<_> = (0..8u64)
            .map(|n| t.reserve(ip(1), user(n), now).unwrap())
            .collect();
        assert_eq!(t.reserve(ip(1), user(99), now).unwrap_err(), 1);
        assert!(t.reserve(ip(2), user(99), now).is_ok(), "per client");
        drop(held);
        assert_eq!(t.client_count(ip(1), now), 8, "dropped, they failed");
        assert!(t.reserve(ip(1), user(99), now).is_ok());
    }

    #[test]
    fn tables_are_bounded() {
        let t = LoginThrottle::new(Limits {
            keys_max: 2,
            ..limits(1, 1)
        });
        let now = Instant::now();
        for i in 0..5u8 {
            let _ = t.reserve(ip(i), user(u64::from(i)), now);
        }
        let st = t.state.lock().unwrap();
        assert_eq!(st.clients.map.len(), 2);
        assert_eq!(st.accounts.map.len(), 2);
        assert!(st.by_pair.len() <= 2);
    }

    #[test]
    fn registrations_are_counted_per_client() {
        let r = RegisterThrottle::new(2);
        let now = Instant::now();
        assert!(r.take(ip(1), now).is_ok());
        assert!(r.take(ip(1), now).is_ok());
        assert!(r.take(ip(1), now).is_err());
        assert!(r.take(ip(2), now).is_ok());
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A client starts an attempt at an account.
        Start { client: u8, account: u8 },
        /// The oldest pending attempt of that index ends, well or badly.
        Finish { pending: usize, ok: bool },
        /// Time passes, in seconds.
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 0u8..3).prop_map(|(client, account)| Op::Start { client, account }),
            3 => (0usize..8, any::<bool>()).prop_map(|(pending, ok)| Op::Finish { pending, ok }),
            1 => (1u64..40).prop_map(Op::Wait),
        ]
    }

    /// The model: per client and per account, a fixed window of counts. An
    /// account counts its pending attempts as failures; a client counts failures
    /// once they happen, and at most `IN_FLIGHT` pending attempts. A success
    /// removes what its (client, account) pair failed in the client's window, and
    /// its own reservation.
    #[derive(Debug, Default)]
    struct Model {
        clients: HashMap<u8, (u64, u32)>,
        accounts: HashMap<u8, (u64, u32)>,
        pairs: HashMap<(u8, u8), (u64, u32)>,
        in_flight: HashMap<u8, u32>,
    }

    const IN_FLIGHT: u32 = 3;

    impl Model {
        fn live(start: u64, now: u64) -> bool {
            now < start + 60
        }
        fn count(m: &HashMap<u8, (u64, u32)>, k: u8, now: u64) -> u32 {
            m.get(&k)
                .filter(|(s, _)| Self::live(*s, now))
                .map_or(0, |(_, c)| *c)
        }
        fn bump(m: &mut HashMap<u8, (u64, u32)>, k: u8, now: u64) -> u64 {
            let w = m.entry(k).or_insert((now, 0));
            if !Self::live(w.0, now) {
                *w = (now, 0);
            }
            w.1 += 1;
            w.0
        }
        fn start(&mut self, c: u8, a: u8, now: u64) -> bool {
            if Self::count(&self.clients, c, now) >= 4
                || self.in_flight.get(&c).copied().unwrap_or(0) >= IN_FLIGHT
                || Self::count(&self.accounts, a, now) >= 6
            {
                return false;
            }
            Self::bump(&mut self.accounts, a, now);
            *self.in_flight.entry(c).or_insert(0) += 1;
            true
        }
        fn fail(&mut self, c: u8, a: u8, now: u64) {
            *self.in_flight.get_mut(&c).unwrap() -= 1;
            let started = Self::bump(&mut self.clients, c, now);
            let p = self.pairs.entry((c, a)).or_insert((started, 0));
            if p.0 != started {
                *p = (started, 0);
            }
            p.1 += 1;
        }
        fn succeed(&mut self, c: u8, a: u8, now: u64) {
            *self.in_flight.get_mut(&c).unwrap() -= 1;
            let mut back = 1;
            if let Some((started, n)) = self.pairs.remove(&(c, a)) {
                if let Some(w) = self.clients.get_mut(&c)
                    && w.0 == started
                    && Self::live(w.0, now)
                {
                    w.1 = w.1.saturating_sub(n);
                }
                back += n;
            }
            if let Some(w) = self.accounts.get_mut(&a)
                && Self::live(w.0, now)
            {
                w.1 = w.1.saturating_sub(back);
            }
        }
    }

    proptest! {
        #[test]
        fn the_throttle_agrees_with_its_model(ops in prop::collection::vec(op(), 1..120)) {
            let t = LoginThrottle::new(Limits {
                in_flight_per_client: IN_FLIGHT,
                ..limits(4, 6)
            });
            let t0 = Instant::now();
            let mut secs = 0u64;
            let mut model = Model::default();
            let mut pending: Vec<(u8, u8, Attempt)> = Vec::new();
            for op in ops {
                let now = t0 + Duration::from_secs(secs);
                match op {
                    Op::Start { client, account } => {
                        let got = t.reserve(ip(client), user(u64::from(account)), now);
                        let want = model.start(client, account, secs);
                        prop_assert_eq!(got.is_ok(), want);
                        if let Ok(a) = got {
                            pending.push((client, account, a));
                        }
                    }
                    Op::Finish { pending: i, ok } => {
                        if pending.is_empty() {
                            continue;
                        }
                        let (c, a, attempt) = pending.remove(i % pending.len());
                        if ok {
                            attempt.succeeded(now);
                            model.succeed(c, a, secs);
                        } else {
                            attempt.failed(now);
                            model.fail(c, a, secs);
                        }
                    }
                    Op::Wait(s) => secs += s,
                }
                let now = t0 + Duration::from_secs(secs);
                for k in 0u8..3 {
                    let c = t.client_count(ip(k), now);
                    prop_assert_eq!(c, Model::count(&model.clients, k, secs));
                    prop_assert!(
                        c < 4 + IN_FLIGHT,
                        "a client's failures stay under its limit plus what was in flight"
                    );
                    let f = t.in_flight(ip(k));
                    prop_assert_eq!(f, model.in_flight.get(&k).copied().unwrap_or(0));
                    prop_assert!(f <= IN_FLIGHT, "a client never has more in flight");
                    let a = t.account_count(&user(u64::from(k)), now);
                    prop_assert_eq!(a, Model::count(&model.accounts, k, secs));
                    prop_assert!(a <= 6, "an account never passes its limit");
                }
            }
        }
    }
}
