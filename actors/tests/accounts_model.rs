//! Model-based test of the two rooms beside the ledger whose rules are written
//! once and stored twice: accounts with their rotating refresh tokens (the users
//! actor) and webhook endpoints with their delivery cursors (the webhooks actor).
//! Random sequences of operations run against the real actors and against a
//! plain model; every answer must agree, across restarts, on both backends (the
//! redb file, and PostgreSQL with a fresh database per case). A fork of a rule
//! that drifts on one backend fails here.
//!
//! Why one file: the model, the two backends' actors and the steps are read
//! together, as in `ledger_model.rs`.

use std::collections::{BTreeMap, BTreeSet};

use actix::{Actor, Addr};
use proptest::prelude::*;

use orderflow_actors::domain::{Email, Role, Timestamp, UserId, Username};
use orderflow_actors::events::TypeFilter;
use orderflow_actors::pg::{self, schema, users::PgUsers, webhooks::PgWebhooks};
use orderflow_actors::store::Store;
use orderflow_actors::users::{
    CreateUser, RefreshError, RevokeRefreshToken, RotateRefreshToken, StoreRefreshToken, UserError,
    UserStore,
};
use orderflow_actors::webhooks::{
    Attempted, CreateEndpoint, DeliveryRow, EndpointId, EndpointStatus, GetEndpoint, Outcome,
    RecordAttempts, SkipTo, Verdict, WebhookError, Webhooks,
};

mod support;

const NAMES: u8 = 4;
const ENDPOINTS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    Register {
        name: u8,
        email: u8,
        shout: bool,
    },
    /// A login: a new family's first token for a user, alive or already expired.
    Login {
        user: u8,
        alive: bool,
    },
    /// Presents one of the tokens stored so far (or, one time in eight, one
    /// never stored); its successor is always a new token.
    Rotate {
        presented: prop::sample::Index,
        unknown: bool,
    },
    Logout {
        presented: prop::sample::Index,
    },
    CreateEndpoint {
        cursor: u64,
    },
    Attempts {
        endpoint: usize,
        attempts: Vec<(u64, Kind)>,
    },
    Skip {
        endpoint: usize,
        seq: u64,
    },
    Reopen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Delivered,
    Retry,
    Disable,
    Test,
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        4 => Just(Kind::Delivered),
        2 => Just(Kind::Retry),
        1 => Just(Kind::Disable),
        1 => Just(Kind::Test),
    ];
    prop_oneof![
        3 => (0..NAMES, 0..NAMES, any::<bool>()).prop_map(|(name, email, shout)| Step::Register { name, email, shout }),
        3 => (0..NAMES, prop::bool::weighted(0.8)).prop_map(|(user, alive)| Step::Login { user, alive }),
        6 => (any::<prop::sample::Index>(), prop::bool::weighted(0.125)).prop_map(|(presented, unknown)| Step::Rotate { presented, unknown }),
        1 => any::<prop::sample::Index>().prop_map(|presented| Step::Logout { presented }),
        1 => (0u64..5).prop_map(|cursor| Step::CreateEndpoint { cursor }),
        4 => (0..ENDPOINTS, prop::collection::vec((0u64..8, kind), 1..4)).prop_map(|(endpoint, attempts)| Step::Attempts { endpoint, attempts }),
        1 => (0..ENDPOINTS, 0u64..10).prop_map(|(endpoint, seq)| Step::Skip { endpoint, seq }),
        1 => Just(Step::Reopen),
    ]
}

/// The answer to one step, reduced to what both sides can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Ids are opaque: PostgreSQL's sequence skips the value of a refused
    /// insert, redb's counter does not. The model keeps the id each answered.
    Registered,
    UsernameTaken,
    EmailTaken,
    Stored,
    Rotated(u64),
    Invalid,
    Reused,
    LoggedOut,
    Endpoint {
        cursor: u64,
        failures: u32,
        disabled: bool,
        logged: u64,
    },
    Superseded,
    Skipped,
    NotApplicable,
}

#[derive(Debug, Clone)]
struct Token {
    user: u64,
    family: u128,
    alive: bool,
    rotated: bool,
}

#[derive(Debug, Clone, Default)]
struct ModelEndpoint {
    cursor: u64,
    failures: u32,
    disabled: bool,
    logged: u64,
}

#[derive(Debug, Default)]
struct Model {
    /// Folded username → id, and folded emails taken.
    users: BTreeMap<String, u64>,
    emails: BTreeSet<String>,
    /// Tokens ever stored, by number (a token is never stored twice: tokens are
    /// random); [`digest`] makes a number a token's digest.
    tokens: BTreeMap<u16, Token>,
    next_token: u16,
    revoked: BTreeSet<u128>,
    families: u128,
    endpoints: Vec<(u64, ModelEndpoint)>,
}

impl Model {
    /// The answer a registration must get; `id` is the one the backend gave, if
    /// it created the account.
    fn register(&mut self, name: u8, email: u8, id: Option<u64>) -> Answer {
        let (name, email) = (format!("user{name}"), format!("m{email}@shop.test"));
        if self.users.contains_key(&name) {
            return Answer::UsernameTaken;
        }
        if self.emails.contains(&email) {
            return Answer::EmailTaken;
        }
        let Some(id) = id else {
            return Answer::Registered;
        };
        assert!(
            !self.users.values().any(|&u| u == id),
            "id {id} given twice"
        );
        self.users.insert(name, id);
        self.emails.insert(email);
        Answer::Registered
    }

    /// A new token's number.
    fn fresh(&mut self) -> u16 {
        self.next_token += 1;
        self.next_token
    }

    /// One of the tokens stored so far, or a number never stored.
    fn pick(&self, at: &prop::sample::Index, unknown: bool) -> u16 {
        let keys: Vec<u16> = self.tokens.keys().copied().collect();
        if keys.is_empty() || unknown {
            u16::MAX
        } else {
            keys[at.index(keys.len())]
        }
    }

    fn rotate(&mut self, presented: u16, successor: u16) -> Answer {
        let Some(token) = self.tokens.get(&presented).cloned() else {
            return Answer::Invalid;
        };
        if self.revoked.contains(&token.family) || !token.alive {
            return Answer::Invalid;
        }
        if token.rotated {
            self.revoked.insert(token.family);
            return Answer::Reused;
        }
        self.tokens.get_mut(&presented).expect("just read").rotated = true;
        self.tokens.insert(
            successor,
            Token {
                rotated: false,
                alive: true,
                ..token
            },
        );
        Answer::Rotated(token.user)
    }

    fn attempts(&mut self, endpoint: usize, attempts: &[(u64, Kind)]) -> Answer {
        let Some((_, e)) = self.endpoints.get(endpoint) else {
            return Answer::NotApplicable;
        };
        let mut e = e.clone();
        for &(seq, kind) in attempts {
            match kind {
                Kind::Delivered if seq <= e.cursor => return Answer::Superseded,
                Kind::Delivered => {
                    e.cursor = seq;
                    e.failures = 0;
                }
                Kind::Retry => e.failures += 1,
                Kind::Disable => {
                    e.failures += 1;
                    e.disabled = true;
                }
                Kind::Test => {}
            }
            e.logged += 1;
        }
        let answer = e.answer();
        self.endpoints[endpoint].1 = e;
        answer
    }
}

impl ModelEndpoint {
    fn answer(&self) -> Answer {
        Answer::Endpoint {
            cursor: self.cursor,
            failures: self.failures,
            disabled: self.disabled,
            logged: self.logged,
        }
    }
}

enum Place {
    Redb(tempfile::TempDir),
    Postgres(support::pg::TestDb),
}

enum Live {
    Redb {
        store: Store,
        users: Addr<UserStore>,
        webhooks: Addr<Webhooks>,
    },
    Postgres {
        users: Addr<PgUsers>,
        webhooks: Addr<PgWebhooks>,
    },
}

/// Sends `$msg` to the live room `$room` (`users` or `webhooks`) on whichever
/// backend runs.
macro_rules! ask {
    ($live:expr, $room:ident, $msg:expr) => {
        match $live {
            Live::Redb { $room, .. } => $room.send($msg).await.unwrap(),
            Live::Postgres { $room, .. } => $room.send($msg).await.unwrap(),
        }
    };
}

impl Live {
    async fn start(place: &Place) -> Self {
        match place {
            Place::Redb(dir) => {
                let store = Store::open(dir.path()).unwrap();
                Live::Redb {
                    users: UserStore::new(store.clone()).start(),
                    webhooks: Webhooks::new(store.clone()).start(),
                    store,
                }
            }
            Place::Postgres(db) => {
                let mut client = pg::connect(&db.url).await.unwrap();
                schema::migrate(&mut client).await.unwrap();
                let pool = pg::pool(&db.url, 2).unwrap();
                Live::Postgres {
                    users: PgUsers::new(pool.clone()).start(),
                    webhooks: PgWebhooks::new(pool).start(),
                }
            }
        }
    }

    async fn stop(self) {
        match self {
            Live::Redb {
                store,
                users,
                webhooks,
            } => {
                users.send(orderflow_actors::mailbox::Stop).await.unwrap();
                webhooks
                    .send(orderflow_actors::mailbox::Stop)
                    .await
                    .unwrap();
                drop((users, webhooks));
                support::until_released(store).await;
            }
            Live::Postgres { .. } => {}
        }
    }

    async fn apply(&self, model: &mut Model, step: &Step) -> (Answer, Answer) {
        match step {
            Step::Register { name, email, shout } => {
                let raw = format!("user{name}");
                let username = if *shout { raw.to_uppercase() } else { raw };
                let (got, id) = match ask!(
                    self,
                    users,
                    CreateUser {
                        username: Username::parse(&username).unwrap(),
                        email: Email::parse(&format!("m{email}@shop.test")).unwrap(),
                        password_hash: "$argon2id$unused".to_owned(),
                        role: Role::Customer,
                    }
                ) {
                    Ok(user) => (Answer::Registered, Some(user.id.0)),
                    Err(UserError::UsernameTaken) => (Answer::UsernameTaken, None),
                    Err(UserError::EmailTaken) => (Answer::EmailTaken, None),
                    Err(UserError::Store(e)) => panic!("{e}"),
                };
                (model.register(*name, *email, id), got)
            }
            Step::Login { user, alive } => {
                let Some(id) = model.users.get(&format!("user{user}")).copied() else {
                    return (Answer::NotApplicable, Answer::NotApplicable);
                };
                model.families += 1;
                let family = model.families;
                let token = model.fresh();
                ask!(
                    self,
                    users,
                    StoreRefreshToken {
                        digest: digest(token),
                        user: UserId(id),
                        family,
                        expires_at: expiry(*alive),
                    }
                )
                .unwrap();
                model.tokens.insert(
                    token,
                    Token {
                        user: id,
                        family,
                        alive: *alive,
                        rotated: false,
                    },
                );
                (Answer::Stored, Answer::Stored)
            }
            Step::Rotate { presented, unknown } => {
                let presented = model.pick(presented, *unknown);
                let successor = model.fresh();
                let got = match ask!(
                    self,
                    users,
                    RotateRefreshToken {
                        presented: digest(presented),
                        successor: digest(successor),
                        expires_at: expiry(true),
                    }
                ) {
                    Ok(user) => Answer::Rotated(user.id.0),
                    Err(RefreshError::Invalid) => Answer::Invalid,
                    Err(RefreshError::Reused) => Answer::Reused,
                    Err(RefreshError::Store(e)) => panic!("{e}"),
                };
                (model.rotate(presented, successor), got)
            }
            Step::Logout { presented } => {
                let presented = model.pick(presented, false);
                ask!(
                    self,
                    users,
                    RevokeRefreshToken {
                        presented: digest(presented),
                    }
                )
                .unwrap();
                if let Some(t) = model.tokens.get(&presented) {
                    model.revoked.insert(t.family);
                }
                (Answer::LoggedOut, Answer::LoggedOut)
            }
            Step::CreateEndpoint { cursor } => {
                let created = ask!(
                    self,
                    webhooks,
                    CreateEndpoint {
                        url: "https://hooks.shop.test/in".to_owned(),
                        events: vec![TypeFilter::parse("*").unwrap()],
                        description: None,
                        secret: [7; 32],
                        cursor: *cursor,
                    }
                )
                .unwrap();
                let e = ModelEndpoint {
                    cursor: *cursor,
                    ..ModelEndpoint::default()
                };
                let want = e.answer();
                model.endpoints.push((created.id.0, e));
                (want, endpoint_answer(Ok(created)))
            }
            Step::Attempts { endpoint, attempts } => {
                let Some(&(id, _)) = model.endpoints.get(*endpoint) else {
                    return (Answer::NotApplicable, Answer::NotApplicable);
                };
                let got = endpoint_answer(ask!(
                    self,
                    webhooks,
                    RecordAttempts {
                        id: EndpointId(id),
                        attempts: attempts
                            .iter()
                            .map(|&(seq, kind)| attempted(seq, kind))
                            .collect(),
                    }
                ));
                (model.attempts(*endpoint, attempts), got)
            }
            Step::Skip { endpoint, seq } => {
                let Some((id, e)) = model.endpoints.get_mut(*endpoint) else {
                    return (Answer::NotApplicable, Answer::NotApplicable);
                };
                ask!(
                    self,
                    webhooks,
                    SkipTo {
                        id: EndpointId(*id),
                        seq: *seq,
                    }
                )
                .unwrap();
                if *seq > e.cursor && e.failures == 0 {
                    e.cursor = *seq;
                }
                (Answer::Skipped, Answer::Skipped)
            }
            Step::Reopen => (Answer::NotApplicable, Answer::NotApplicable),
        }
    }

    /// Every endpoint as stored agrees with the model.
    async fn check_endpoints(&self, model: &Model, n: usize) {
        for (id, e) in &model.endpoints {
            let got = endpoint_answer(ask!(
                self,
                webhooks,
                GetEndpoint {
                    id: EndpointId(*id)
                }
            ));
            assert_eq!(got, e.answer(), "step {n}: endpoint {id}");
        }
    }
}

/// Token number `n` as a digest.
fn digest(n: u16) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[..2].copy_from_slice(&n.to_le_bytes());
    d
}

/// A token's expiry: an hour away, or an hour ago.
fn expiry(alive: bool) -> Timestamp {
    let now = Timestamp::now();
    if alive {
        now.plus_secs(3600)
    } else {
        now.minus_secs(3600)
    }
}

fn attempted(seq: u64, kind: Kind) -> Attempted {
    let advances = match kind {
        Kind::Delivered => Some(Verdict::Delivered),
        Kind::Retry => Some(Verdict::Retry {
            retry_at: Timestamp::now().plus_secs(60),
        }),
        Kind::Disable => Some(Verdict::Disable {
            reason: "gone".to_owned(),
        }),
        Kind::Test => None,
    };
    Attempted {
        advances,
        delivery: DeliveryRow {
            event_id: format!("evt_{seq}"),
            seq,
            kind: "order.placed".to_owned(),
            attempt: 1,
            outcome: if kind == Kind::Delivered {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            response_status: Some(if kind == Kind::Delivered { 200 } else { 500 }),
            error: None,
            duration_ms: 3,
            at: Timestamp::now(),
        },
    }
}

fn endpoint_answer(r: Result<orderflow_actors::webhooks::Endpoint, WebhookError>) -> Answer {
    match r {
        Ok(e) => Answer::Endpoint {
            cursor: e.row.cursor,
            failures: e.row.failures,
            disabled: e.row.status == EndpointStatus::Disabled,
            logged: e.row.attempts_logged,
        },
        Err(WebhookError::Superseded { .. }) => Answer::Superseded,
        Err(e) => panic!("{e}"),
    }
}

fn run(steps: Vec<Step>, postgres: bool) {
    actix::System::new().block_on(async move {
        let place = if postgres {
            Place::Postgres(support::pg::database().await)
        } else {
            Place::Redb(tempfile::tempdir().unwrap())
        };
        let mut model = Model::default();
        let mut live = Live::start(&place).await;
        for (n, step) in steps.iter().enumerate() {
            if matches!(step, Step::Reopen) {
                live.stop().await;
                live = Live::start(&place).await;
                live.check_endpoints(&model, n).await;
                continue;
            }
            let (want, got) = live.apply(&mut model, step).await;
            assert_eq!(got, want, "step {n}: {step:?}");
        }
        live.check_endpoints(&model, steps.len()).await;
        live.stop().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn accounts_and_webhook_cursors_agree_with_the_model(steps in prop::collection::vec(step(), 1..50)) {
        run(steps, false);
    }
}

proptest! {
    // Fewer cases: each makes a database on the run's PostgreSQL server.
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn accounts_and_webhook_cursors_on_postgres_agree_with_the_model(steps in prop::collection::vec(step(), 1..50)) {
        run(steps, true);
    }
}
