//! `calsync token`: a bearer token of this deployment's development issuer, for curl and the
//! demo (`CALSYNC_ENV=local`; a deployment with a configured issuer has none to give).

use std::path::PathBuf;
use std::time::Duration;

use calsync_system::Settings;
use calsync_system::authentication::{Grant, development_token};

/// Arguments of `calsync token`.
#[derive(clap::Args)]
pub struct TokenArgs {
    /// Who the token acts as: `system` (a back-end service, every resource its scopes name) or a
    /// person: `Patient/maria`, `RelatedPerson/daughter`, `Practitioner/okafor`.
    #[arg(long = "as", value_name = "WHO")]
    who: String,
    /// The scopes granted (default: `system/*.cruds` for system; `patient/*.cruds user/*.rs`
    /// with openid, fhirUser and launch/patient for a patient or caregiver; `user/*.cruds` for
    /// a practitioner).
    #[arg(long)]
    scope: Option<String>,
    /// The patient in context (`patient` claim), for a caregiver acting for one of several
    /// patients; a patient's own token names the patient.
    #[arg(long)]
    patient: Option<String>,
    /// How long the token is valid, in minutes.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Folder of the layered configuration (base.toml, $CALSYNC_ENV.toml): the server's, whose
    /// `secret_key` the development issuer's key comes from.
    #[arg(long, default_value = "config")]
    config: PathBuf,
}

pub fn run(args: TokenArgs) -> Result<(), String> {
    let settings = Settings::from_environment(&args.config)?;
    let grant = Grant::acting_as(&args.who, args.scope.as_deref(), args.patient.as_deref())?;
    println!("{}", development_token(&settings, &grant, Duration::from_secs(args.minutes.max(1) * 60))?);
    Ok(())
}
