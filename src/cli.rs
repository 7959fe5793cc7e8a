//! The subcommands: `serve`, `ingest`, `users create`, `gen`.

use std::io::BufRead;
use std::process::ExitCode;

use crate::config::{Cli, Command, CreateUserArgs, UsersCommand};
use crate::startup::{Application, Services, shutdown_signal};
use crate::{auth, logging};
use orderflow_actors::domain::{Email, Password, Role, Username};
use orderflow_actors::users::CreateUser;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let _guard = logging::init(&args.store.log, args.store.log_format)?;
            actix::System::new().block_on(async move {
                let app = Application::build(args).await?;
                app.run_until(shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Users {
            command: UsersCommand::Create(args),
        } => {
            let _guard = logging::init(&args.store.log, args.store.log_format)?;
            actix::System::new().block_on(create_user(args))
        }
        Command::Ingest(_) | Command::Gen(_) => {
            anyhow::bail!("not built yet")
        }
    }
}

async fn create_user(args: CreateUserArgs) -> anyhow::Result<ExitCode> {
    let secret = match std::env::var("ORDERFLOW_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let mut problems = Vec::new();
    let username = Username::parse(&args.username)
        .map_err(|e| problems.push(format!("--username {e}")))
        .ok();
    let email = Email::parse(&args.email)
        .map_err(|e| problems.push(format!("--email {e}")))
        .ok();
    let password = Password::parse(&secret)
        .map_err(|e| problems.push(format!("password {e}")))
        .ok();
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        for p in problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::from(2));
    };
    let services = Services::start(&args.store, 1, 1)?;
    let password_hash = auth::password::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let role = if args.admin {
        Role::Admin
    } else {
        Role::Customer
    };
    let outcome = services
        .users
        .ask(CreateUser {
            username,
            email,
            password_hash,
            role,
        })
        .await?;
    services.shutdown().await;
    match outcome {
        Ok(user) => {
            println!(
                "created user {} (id {}, {})",
                user.username.as_str(),
                user.id.0,
                user.role.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
