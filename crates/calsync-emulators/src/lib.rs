//! Local emulators of the calendar providers calsync cannot reach from here: the Google
//! Calendar API (OAuth token endpoint, freeBusy) and Microsoft Graph (v2.0 token endpoint with
//! rotating refresh tokens, calendarView with paging). They follow the providers' documented
//! wire format (`docs/connectors.md`), and tests script faults into them. calsync's connectors
//! get only a base URL and cannot tell an emulator from the real service.

pub mod consent;
pub mod google;
pub mod microsoft;
