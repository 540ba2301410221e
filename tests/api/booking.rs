//! Holding, booking and cancelling: races, capacity, expiry, and every invariant under a
//! randomized crowd of clients.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_bookings_of_one_slot_book_it_once() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    let offer = found[0].clone();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (client, url, body) =
            (app.client.clone(), app.url("/Appointment/$book"), with_appointment(&offer).to_string());
        tasks.push(tokio::spawn(async move {
            client.post(url).header("Content-Type", "application/fhir+json").body(body).send().await.unwrap().status()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap().as_u16());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 99, "{codes:?}");
    let booked: Value = app.get("/Appointment?status=booked").await.json().await.unwrap();
    assert_eq!(booked["total"], 1);
    app.database.finish().await;
}

#[tokio::test]
async fn a_participant_busy_since_the_search_makes_booking_fail() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    // After the search, the caregiver's calendar fills 14:00-14:30Z.
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1400", "1430")).await.status(), 200);
    let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&found[0]), None).await;
    let issue = outcome(resp, StatusCode::CONFLICT).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("RelatedPerson/ana is now busy"), "{issue}");
    let booked: Value = app.get("/Appointment?status=booked").await.json().await.unwrap();
    assert_eq!(booked["total"], 0);
    let slot: Value = app.get("/Slot/s0").await.json().await.unwrap();
    assert_eq!(slot["status"], "free");
    app.database.finish().await;
}

#[tokio::test]
async fn an_expired_hold_frees_its_slot_by_itself() {
    let app = spawn_app_holding(1).await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    let resp = post_parameters(&app, "/Appointment/$hold", with_appointment(&found[0]), None).await;
    assert_eq!(resp.status(), 201);
    let held: Value = resp.json().await.unwrap();
    assert_eq!(app.get("/Slot/s0").await.json::<Value>().await.unwrap()["status"], "busy-tentative");
    // Past its expiry another client may book the time even before the sweeper ran...
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let mut freed = false;
    for _ in 0..40 {
        let slot: Value = app.get("/Slot/s0").await.json().await.unwrap();
        if slot["status"] == "free" {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // ...and the sweeper releases it without anyone calling anything.
    assert!(freed, "the hold was not released");
    let appointment: Value =
        app.get(&format!("/Appointment/{}", held["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(appointment["status"], "cancelled");
    // Booking on the expired hold is re-validated: the Slot is free, so it books.
    let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&found[0]), None).await;
    assert_eq!(resp.status(), 200);
    app.database.finish().await;
}

const SLOT_CAPACITY: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity";

/// A group Slot (14:00-15:00Z on the test day) that takes `capacity` appointments.
async fn load_group_slot(app: &TestApp, capacity: i64) {
    let (d, _) = day();
    let schedule = json!({"resourceType": "Schedule", "id": "group", "active": true,
        "actor": [{"reference": "Location/riverside"}]});
    assert!(app.put("/Schedule/group", &schedule, None).await.status().is_success());
    let slot = json!({"resourceType": "Slot", "id": "g", "schedule": {"reference": "Schedule/group"},
        "status": "free", "start": format!("{d}T14:00:00Z"), "end": format!("{d}T15:00:00Z"),
        "extension": [{"url": SLOT_CAPACITY, "valueInteger": capacity}]});
    assert!(app.put("/Slot/g", &slot, None).await.status().is_success());
}

fn units_left(slot: &Value) -> Option<i64> {
    slot["extension"].as_array()?.iter().find(|e| e["url"] == SLOT_CAPACITY)?["valueInteger"].as_i64()
}

#[tokio::test]
async fn a_slot_with_capacity_takes_that_many_appointments() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    load_group_slot(&app, 2).await;
    let slot: Value = app.get("/Slot/g").await.json().await.unwrap();
    let book = |who: &'static str| {
        let body = with_appointment(&proposed(&slot, &[who]));
        let app = &app;
        async move { post_parameters(app, "/Appointment/$book", body, None).await }
    };
    let first = book("Patient/maria").await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let g: Value = app.get("/Slot/g").await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), units_left(&g)), (Some("free"), Some(1)), "one unit left: {g}");
    // Still offered by $find while a unit is left.
    let find = format!("/Appointment/$find?start={d}&end={d}&location-reference=Location/riverside", d = day().0);
    assert!(proposals(&app, &find).await.iter().any(|a| a["slot"][0]["reference"] == "Slot/g"));
    assert_eq!(book("RelatedPerson/ana").await.status(), 200);
    let g: Value = app.get("/Slot/g").await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), units_left(&g)), (Some("busy"), Some(0)));
    assert!(!proposals(&app, &find).await.iter().any(|a| a["slot"][0]["reference"] == "Slot/g"));
    let issue = outcome(book("Patient/maria").await, StatusCode::CONFLICT).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("fully booked"), "{issue}");
    // A cancellation gives its unit back.
    let id = first["id"].as_str().unwrap();
    assert_eq!(app.client.post(app.url(&format!("/Appointment/{id}/$cancel"))).send().await.unwrap().status(), 200);
    let g: Value = app.get("/Slot/g").await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), units_left(&g)), (Some("free"), Some(1)));
    app.database.finish().await;
}

/// A small deterministic generator for the randomized test (xorshift64*).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Many clients booking, holding and cancelling over five Slots (one taking two appointments)
/// and four participants at once. Afterwards no Slot holds more than its capacity, its status
/// and units agree with what is booked, no participant has two overlapping booked appointments,
/// and every booked appointment (and no other) has its participants' busy Slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomized_booking_and_cancelling_keeps_every_invariant() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    load_group_slot(&app, 2).await;
    assert!(
        app.put("/Patient/joe", &json!({"resourceType": "Patient", "id": "joe"}), None).await.status().is_success()
    );
    let ben = json!({"resourceType": "RelatedPerson", "id": "ben", "patient": {"reference": "Patient/joe"}});
    assert!(app.put("/RelatedPerson/ben", &ben, None).await.status().is_success());
    let mut slots = Vec::new();
    for id in ["s0", "s1", "s2", "s3", "g"] {
        slots.push(app.get(&format!("/Slot/{id}")).await.json::<Value>().await.unwrap());
    }
    let people = ["Patient/maria", "RelatedPerson/ana", "Patient/joe", "RelatedPerson/ben"];
    let seed = std::env::var("CALSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
    eprintln!("CALSYNC_TEST_SEED={seed}");
    let app = std::sync::Arc::new(app);
    let mut clients = Vec::new();
    for c in 0..8u64 {
        let (app, slots) = (app.clone(), slots.clone());
        clients.push(tokio::spawn(async move {
            let mut dice = Dice(seed.wrapping_add(c.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
            let mut mine: Vec<String> = Vec::new();
            let mut codes = Vec::new();
            for _ in 0..25 {
                let slot = &slots[dice.below(slots.len())];
                let who: Vec<&str> = people.iter().copied().filter(|_| dice.below(2) == 0).collect();
                let who = if who.is_empty() { vec![people[dice.below(people.len())]] } else { who };
                let offer = proposed(slot, &who);
                match dice.below(4) {
                    0 if !mine.is_empty() => {
                        let id = mine.swap_remove(dice.below(mine.len()));
                        let url = app.url(&format!("/Appointment/{id}/$cancel"));
                        let status = app.client.post(url).send().await.unwrap().status();
                        codes.push(status.as_u16());
                        if status != 200 {
                            mine.push(id);
                        }
                    }
                    1 => {
                        let resp = post_parameters(&app, "/Appointment/$hold", with_appointment(&offer), None).await;
                        codes.push(resp.status().as_u16());
                        if resp.status() != 201 {
                            continue;
                        }
                        let held: Value = resp.json().await.unwrap();
                        let id = held["id"].as_str().unwrap().to_string();
                        let resp = post_parameters(&app, "/Appointment/$book", with_reference(&id), None).await;
                        codes.push(resp.status().as_u16());
                        if resp.status() == 200 {
                            mine.push(id);
                        } else {
                            // Give the hold back (retrying while others change the same Slot).
                            for _ in 0..20 {
                                let url = app.url(&format!("/Appointment/{id}/$cancel"));
                                if app.client.post(url).send().await.unwrap().status() == 200 {
                                    break;
                                }
                            }
                        }
                    }
                    _ => {
                        let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&offer), None).await;
                        codes.push(resp.status().as_u16());
                        if resp.status() == 200 {
                            mine.push(resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
                        }
                    }
                }
            }
            codes
        }));
    }
    let mut codes = Vec::new();
    for c in clients {
        codes.extend(c.await.unwrap());
    }
    assert!(codes.iter().all(|c| matches!(c, 200 | 201 | 409)), "only successes and conflicts: {codes:?}");
    assert!(codes.contains(&200) && codes.contains(&409), "the run both booked and collided: {codes:?}");

    let all: Value = app.get("/Appointment?_count=500").await.json().await.unwrap();
    let appointments: Vec<Value> = all["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect();
    let booked: Vec<&Value> = appointments.iter().filter(|a| a["status"] == "booked").collect();
    assert!(appointments.iter().all(|a| a["status"] == "booked" || a["status"] == "cancelled"), "no hold is left");
    for slot in &slots {
        let id = slot["id"].as_str().unwrap();
        let capacity = if id == "g" { 2 } else { 1 };
        let taken = booked.iter().filter(|a| a["slot"][0]["reference"] == format!("Slot/{id}")).count() as i64;
        assert!(taken <= capacity, "Slot/{id} has {taken} appointments for {capacity} places");
        let now: Value = app.get(&format!("/Slot/{id}")).await.json().await.unwrap();
        let expected = if taken == capacity { "busy" } else { "free" };
        assert_eq!(now["status"], expected, "Slot/{id} with {taken} of {capacity}: {now}");
        if id == "g" {
            assert_eq!(units_left(&now), Some(capacity - taken), "{now}");
        }
    }
    let interval = |a: &Value| {
        let t = |k: &str| chrono::DateTime::parse_from_rfc3339(a[k].as_str().unwrap()).unwrap();
        (t("start"), t("end"))
    };
    for who in people {
        let theirs: Vec<&&Value> = booked
            .iter()
            .filter(|a| a["participant"].as_array().unwrap().iter().any(|p| p["actor"]["reference"] == who))
            .collect();
        for (i, a) in theirs.iter().enumerate() {
            for b in &theirs[i + 1..] {
                let ((s1, e1), (s2, e2)) = (interval(a), interval(b));
                assert!(e1 <= s2 || e2 <= s1, "{who} has overlapping bookings {} and {}", a["id"], b["id"]);
            }
        }
    }
    for a in &appointments {
        let id = a["id"].as_str().unwrap();
        let n = a["participant"].as_array().unwrap().len();
        let ids: Vec<String> = (0..n).map(|k| format!("{id}-p{k}")).collect();
        let found: Value = app.get(&format!("/Slot?_id={}", ids.join(","))).await.json().await.unwrap();
        let expected = if a["status"] == "booked" { n as u64 } else { 0 };
        assert_eq!(found["total"], expected, "participants' busy Slots of {} Appointment/{id}", a["status"]);
    }
    std::sync::Arc::into_inner(app).expect("clients are done").database.finish().await;
}

/// A write to a booked Slot cannot free it under its appointment: the write that would is
/// refused naming the appointment, a second booking of its one place still fails, and a write
/// that leaves its time and status as they are keeps calsync's record of the booking.
#[tokio::test]
async fn a_slot_write_cannot_undo_a_booking() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&found[0]), None).await;
    assert_eq!(resp.status(), 200);
    let booked: Value = resp.json().await.unwrap();
    let appointment = format!("Appointment/{}", booked["id"].as_str().unwrap());
    let slot_id = found[0]["slot"][0]["reference"].as_str().unwrap().strip_prefix("Slot/").unwrap().to_string();
    let stored: Value = app.get(&format!("/Slot/{slot_id}")).await.json().await.unwrap();
    assert_eq!(stored["status"], "busy");

    // Freed by a plain write: refused, naming the appointment.
    let mut freed = stored.clone();
    freed["status"] = json!("free");
    freed.as_object_mut().unwrap().remove("extension");
    let issue = outcome(app.put(&format!("/Slot/{slot_id}"), &freed, None).await, StatusCode::CONFLICT).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains(&appointment), "{issue}");
    // Moved: refused too.
    let mut moved = stored.clone();
    moved["start"] = json!("2030-01-01T09:00:00Z");
    moved["end"] = json!("2030-01-01T09:30:00Z");
    outcome(app.put(&format!("/Slot/{slot_id}"), &moved, None).await, StatusCode::CONFLICT).await;
    // A comment, with the booking's record left out of the body: written, the record kept.
    let mut commented = stored.clone();
    commented["comment"] = json!("room 3");
    commented.as_object_mut().unwrap().remove("extension");
    let resp = app.put(&format!("/Slot/{slot_id}"), &commented, None).await;
    assert_eq!(resp.status(), 200);
    let written: Value = resp.json().await.unwrap();
    assert_eq!((written["status"].as_str(), written["comment"].as_str()), (Some("busy"), Some("room 3")));
    assert!(written["extension"].to_string().contains(&appointment), "{written}");
    // The one place stays booked once.
    let again = post_parameters(&app, "/Appointment/$book", with_appointment(&found[0]), None).await;
    outcome(again, StatusCode::CONFLICT).await;
    let all: Value = app.get("/Appointment?status=booked").await.json().await.unwrap();
    assert_eq!(all["total"], 1);
    // Cancelled, the Slot is the client's to write again.
    let cancel = app.client.post(app.url(&format!("/{appointment}/$cancel"))).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let now: Value = app.get(&format!("/Slot/{slot_id}")).await.json().await.unwrap();
    let mut closed = now.clone();
    closed["status"] = json!("busy-unavailable");
    assert_eq!(app.put(&format!("/Slot/{slot_id}"), &closed, None).await.status(), 200);
    app.database.finish().await;
}

/// An offered Appointment is checked as a create is: `$hold` and `$book` refuse one that is not
/// FHIR, and a 422 names the element and says what is wrong in words.
#[tokio::test]
async fn an_offer_that_is_not_fhir_is_refused_naming_the_element() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    let mut negative = found[0].clone();
    negative["minutesDuration"] = json!(-30);
    for op in ["$hold", "$book"] {
        let resp = post_parameters(&app, &format!("/Appointment/{op}"), with_appointment(&negative), None).await;
        let issue = outcome(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(issue["expression"][0], "Appointment.minutesDuration", "{op}: {issue}");
        assert!(issue["diagnostics"].as_str().unwrap().contains("-30 is not a value this element can have"), "{issue}");
    }
    let all: Value = app.get("/Appointment").await.json().await.unwrap();
    assert_eq!(all["total"], 0, "nothing was stored");
    let mut create = negative.clone();
    create.as_object_mut().unwrap().remove("id");
    let issue = outcome(app.post("/Appointment", &create).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(issue["expression"][0], "Appointment.minutesDuration");
    let mut required = found[0].clone();
    required["participant"][0]["required"] = json!(5);
    let issue = outcome(app.post("/Appointment", &required).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(issue["expression"][0], "Appointment.participant.required", "{issue}");
    app.database.finish().await;
}
