//! Tokens of the configured issuer are read; every other token is refused with a reason.

use std::time::Duration;

use calsync_auth::{Grant, Issuer, Keys, Verifier};
use calsync_usecase::access::{Interaction, Level};

const ISSUER: &str = "https://auth.example/realm";
const AUDIENCE: &str = "https://calsync.example/fhir";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn maria() -> Grant {
    Grant {
        subject: "user-17".into(),
        scope: "openid fhirUser patient/Appointment.cruds patient/Slot.rs".into(),
        fhir_user: Some("https://ehr.example/fhir/Patient/maria".into()),
        patient: Some("maria".into()),
        client_id: Some("calsync-page".into()),
    }
}

fn setup() -> (Issuer, Verifier) {
    let issuer = Issuer::from_seed(ISSUER, AUDIENCE, b"test seed");
    let verifier = Verifier::new(ISSUER, AUDIENCE, Keys::Fixed(issuer.key_set()));
    (issuer, verifier)
}

#[tokio::test]
async fn a_valid_token_names_its_person_scopes_and_patient() {
    let (issuer, verifier) = setup();
    let token = issuer.mint(&maria(), now(), Duration::from_secs(300));
    let who = verifier.verify(&token).await.unwrap();
    assert_eq!(who.subject, "user-17");
    assert_eq!(who.user.as_deref(), Some("Patient/maria"));
    assert_eq!(who.patient.as_deref(), Some("Patient/maria"));
    assert_eq!(who.client.as_deref(), Some("calsync-page"));
    assert!(who.scopes.allow(Level::Patient, "Appointment", Interaction::Create));
    assert!(!who.scopes.allow(Level::Patient, "Slot", Interaction::Update));
    // The same seed, the same key: another process verifies what this one signed.
    let again = Issuer::from_seed(ISSUER, AUDIENCE, b"test seed");
    assert_eq!(again.jwks(), issuer.jwks());
}

#[tokio::test]
async fn every_bad_token_is_refused_with_a_reason() {
    let (issuer, verifier) = setup();
    for (name, token, reason) in calsync_auth::forgeries(&issuer, &maria(), now()) {
        let err = verifier.verify(&token).await.expect_err(name);
        assert!(err.0.contains(reason), "{name}: {err}");
        assert!(
            !err.to_string().contains(&token[..token.len().min(20)]) || token.len() < 20,
            "{name}: the token is not repeated"
        );
    }
    let base =
        serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": now() + 300, "scope": "patient/*.rs"});
    assert!(verifier.verify(&issuer.sign(&base)).await.is_ok());
    // A fhirUser that is not a person is refused.
    let observation = Grant { fhir_user: Some("Observation/1".into()), ..maria() };
    let err = verifier.verify(&issuer.mint(&observation, now(), Duration::from_secs(300))).await.unwrap_err();
    assert!(err.0.contains("fhirUser"), "{err}");
}

#[tokio::test]
async fn a_remote_key_set_is_read_when_a_token_names_an_unknown_key() {
    let (issuer, _) = setup();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let jwks = issuer.jwks().to_string();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let server = actix_web::HttpServer::new(move || {
        let (jwks, counted) = (jwks.clone(), counted.clone());
        actix_web::App::new().default_service(actix_web::web::to(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { actix_web::HttpResponse::Ok().content_type("application/json").body(jwks) }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let verifier = Verifier::new(ISSUER, AUDIENCE, Keys::Remote(calsync_auth::RemoteKeys::new(url, client)));
    let token = issuer.mint(&maria(), now(), Duration::from_secs(300));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "read once, then cached");
    // An unknown key does not make it read again within the minute.
    let other = Issuer::from_seed(ISSUER, AUDIENCE, b"another seed");
    assert!(verifier.verify(&other.mint(&maria(), now(), Duration::from_secs(300))).await.is_err());
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A token verified once is not checked again while it is valid, and is refused once expired
/// (60 s leeway) although remembered.
#[tokio::test]
async fn a_token_verified_before_is_remembered_until_it_expires() {
    let (issuer, verifier) = setup();
    let lasting = issuer.mint(&maria(), now(), Duration::from_secs(300));
    let first = verifier.verify(&lasting).await.unwrap();
    assert_eq!(verifier.verify(&lasting).await.unwrap(), first);
    // Issued 10 minutes ago for 8: expired beyond the leeway, on the first and the second look.
    let expired = issuer.mint(&maria(), now() - 600, Duration::from_secs(480));
    assert!(verifier.verify(&expired).await.is_err());
    assert!(verifier.verify(&expired).await.is_err());
    // Within the leeway (expired 30 s ago): accepted, remembered, and still accepted.
    let in_leeway = issuer.mint(&maria(), now() - 330, Duration::from_secs(300));
    assert!(verifier.verify(&in_leeway).await.is_ok());
    assert!(verifier.verify(&in_leeway).await.is_ok());
    // One changed byte is another token: checked, and refused.
    let mut tampered = lasting.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert!(verifier.verify(&String::from_utf8(tampered).unwrap()).await.is_err());
}
