//! Black-box tests of calsync's HTTP API, one module per capability: the real server on a
//! random port with a fresh database, over real HTTP (see [`harness`]).

mod booking;
mod calendars;
mod finding;
mod harness;
mod ihe;
mod publishing;
mod random_requests;
mod resources;
mod robustness;
mod search;
mod security;
mod xml;
mod zones;
