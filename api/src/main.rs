//! `canopy-api`: serves the API (and, unless told not to, runs a worker in
//! the same process), creates tenants, and prints the schema.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use canopy_api::actions::tenants::{self, NewTenant};
use canopy_core::secrets::Keyring;
use canopy_core::{config::Config, db, telemetry};

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small objects across threads, where glibc's malloc spent about a
/// tenth of the process's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Canopy's API server. With no command it serves HTTP (and, unless
/// CANOPY_EMBEDDED_WORKER=false, runs the relay and a worker in-process).
#[derive(Parser)]
#[command(name = "canopy-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a tenant and its first TENANT_ADMIN; prints tenantId,
    /// adminUserId, apiKey (every scope, shown once) and activationLink as JSON.
    CreateTenant {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        /// The tenant's own portal, below which its emails' links go;
        /// without it, Canopy's account pages
        /// (`<CANOPY_PUBLIC_URL>/account/<tenant id>`).
        #[arg(long)]
        portal_url: Option<String>,
        #[arg(long)]
        require_approval: bool,
        /// An https URL of the tenant's logo, shown on its account pages
        /// and in its emails.
        #[arg(long)]
        logo_url: Option<String>,
        /// The tenant's accent colour, as #rrggbb.
        #[arg(long)]
        accent_color: Option<String>,
        /// Nobody may sign up by themselves; users are created by
        /// administrators only.
        #[arg(long)]
        no_self_sign_up: bool,
    },
    /// Prints the GraphQL schema (SDL), as checked in at schema.graphql.
    Schema,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line an operator can act on, e.g. a taken CANOPY_ADDR.
            eprintln!("canopy-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => canopy_api::run(Config::from_env()?).await,
        Some(Command::Schema) => {
            print!("{}", canopy_api::graphql::sdl());
            Ok(())
        }
        Some(Command::CreateTenant {
            name,
            admin_email,
            portal_url,
            require_approval,
            logo_url,
            accent_color,
            no_self_sign_up,
        }) => {
            let new = NewTenant {
                name,
                admin_email,
                portal_url,
                require_approval,
                self_sign_up: !no_self_sign_up,
                logo_url,
                accent_color,
            };
            let refuse = |error| anyhow::anyhow!("{}", tenants::describe(&error));
            new.validate().map_err(refuse)?;
            let config = Config::from_env()?;
            let pool = db::connect_and_migrate(&config.database_url).await?;
            let keyring = Keyring::load(&pool, &config).await?;
            let created = tenants::create(&pool, &keyring, &config.public_url, new)
                .await
                .map_err(refuse)?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
    }
}
