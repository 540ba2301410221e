"""Start `calsync serve` on a random port with the demo data, exercise reads, searches, writes
and errors, and validate every resource and Bundle returned with fhir.resources (pydantic 1)
and the official FHIR R4 JSON schema; and the same answers asked for in XML, read by
fhir.resources' own XML reader (lxml), which must validate and say what the JSON says.
Prints 'N passed, M failed'; exit 1 on any failure."""

import json
import pathlib
import sys
import urllib.error
import urllib.request

import jsonschema
from fhir.resources import get_fhir_model_class
from lxml import etree

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from demo_server import DEMO, demo_server, report  # noqa: E402


def call(base, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in req.headers:
        req.add_header("Content-Type", "application/fhir+json")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


APPOINTMENT = {
    "resourceType": "Appointment", "status": "proposed",
    "start": "2026-12-11T17:00:00Z", "end": "2026-12-11T17:30:00Z",
    "slot": [{"reference": "Slot/dr-okafor-11-1200"}],
    "participant": [{"actor": {"reference": "Patient/maria"}, "status": "needs-action"},
                    {"actor": {"reference": "RelatedPerson/daughter"}, "status": "needs-action"},
                    {"actor": {"reference": "Location/riverside"}, "status": "needs-action"}],
}

# (method, path, body, expected status, validate the answer?)
REQUESTS = [
    ("GET", "/metadata", None, 200, True),
    ("GET", "/Slot/dr-okafor-11-1200", None, 200, True),
    ("GET", "/Slot/dr-okafor-11-1200/_history/1", None, 200, True),
    ("GET", "/Schedule/dr-okafor", None, 200, True),
    ("GET", "/Location/riverside", None, 200, True),
    ("GET", "/Patient/maria", None, 200, True),
    ("GET", "/RelatedPerson/daughter", None, 200, True),
    ("GET", "/Practitioner/okafor", None, 200, True),
    ("GET", "/PractitionerRole/okafor", None, 200, True),
    ("GET", "/SearchParameter/Slot-end", None, 200, True),
    ("GET", "/Slot?schedule=dr-okafor&start=ge2026-12-11&status=free&_count=5"
            "&_include=Slot:schedule&_include:iterate=Schedule:actor", None, 200, True),
    ("GET", "/Schedule?_id=dr-lindqvist&_revinclude=Slot:schedule", None, 200, True),
    ("GET", "/Slot?_count=3&_sort=-start", None, 200, True),
    ("GET", "/Slot?_summary=count", None, 200, True),
    ("GET", "/Location?name=river", None, 200, True),
    ("GET", "/Slot?colour=blue&_count=1", None, 200, True),
    # Subsetted resources need not be valid (FHIR search _elements): status only.
    ("GET", "/Slot?_elements=start&_count=2", None, 200, False),
    ("POST", "/Appointment", APPOINTMENT, 201, True),
    ("GET", "/Appointment?patient=maria", None, 200, True),
    ("GET", "/Slot/nope", None, 404, True),
    ("GET", "/Dinosaur/1", None, 404, True),
    ("GET", "/Slot?start=tomorrow", None, 400, True),
    ("POST", "/Slot", b"{not json", 400, True),
    ("POST", "/Slot", {"resourceType": "Slot", "status": "free"}, 422, True),
    ("GET", "/metadata?_format=html", None, 406, True),
    ("PATCH", "/Slot/dr-okafor-11-1200", None, 405, True),
    ("PUT", "/Slot/dr-okafor-11-1200", {"resourceType": "Slot", "id": "dr-okafor-11-1200",
     "schedule": {"reference": "Schedule/dr-okafor"}, "status": "busy",
     "start": "2026-12-11T17:00:00Z", "end": "2026-12-11T17:30:00Z"}, 412, True),
]


# Answers asked for in XML (Accept: application/fhir+xml): (method, path, XML body, status).
SLOT_XML = (b'<Slot xmlns="http://hl7.org/fhir"><schedule><reference value="Schedule/dr-okafor"/></schedule>'
            b'<status value="free"/><start value="2026-12-18T17:00:00Z"/><end value="2026-12-18T17:30:00Z"/></Slot>')
XML_REQUESTS = [
    ("GET", "/metadata", None, 200),
    ("GET", "/Slot/dr-okafor-11-1200", None, 200),
    ("GET", "/Schedule/dr-okafor", None, 200),
    ("GET", "/Location/riverside", None, 200),
    ("GET", "/Slot?schedule=dr-okafor&start=ge2026-12-11&status=free&_count=5"
            "&_include=Slot:schedule&_include:iterate=Schedule:actor", None, 200),
    ("GET", "/Schedule?_id=dr-lindqvist&_revinclude=Slot:schedule", None, 200),
    ("GET", "/Appointment/$find?start=2026-12-14&end=2026-12-14&practitioner=Practitioner/okafor", None, 200),
    ("GET", "/OperationDefinition/appointment-book", None, 200),
    ("GET", "/Slot/nope", None, 404),
    ("GET", "/Slot?start=tomorrow", None, 400),
    ("POST", "/Slot", SLOT_XML, 201),
    ("POST", "/Slot", b"<Slot><status", 400),
]


def check_xml(base, method, path, body, expected):
    """The problems with one answer asked for in XML (none: it passed)."""
    headers = {"Accept": "application/fhir+xml"}
    if body is not None:
        headers["Content-Type"] = "application/fhir+xml"
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            status, raw, ct = resp.status, resp.read(), resp.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        status, raw, ct = e.code, e.read(), e.headers["Content-Type"]
    if status != expected:
        return [f"status {status}, expected {expected}: {raw[:200]!r}"]
    if not (ct or "").startswith("application/fhir+xml"):
        return [f"Content-Type {ct}"]
    tag = etree.QName(etree.fromstring(raw)).localname
    try:
        from_xml = get_fhir_model_class(tag).parse_raw(raw, content_type="application/fhir+xml")
    except Exception as e:  # pydantic.ValidationError and friends
        return [f"fhir.resources (XML): {tag}: {str(e)[:300]}"]
    if method == "GET" and status == 200 and "$find" not in path:
        _, json_raw = call(base, "GET", path)
        from_json = get_fhir_model_class(tag).parse_raw(json_raw)
        if from_xml.dict() != from_json.dict():
            return ["the XML answer does not say what the JSON answer says"]
    return []


def resources_in(doc):
    yield doc
    if doc.get("resourceType") == "Bundle":
        for e in doc.get("entry", []):
            if "resource" in e:
                yield e["resource"]


def self_test(validator):
    """Both validators must reject a broken Slot and accept a good one, or this check proves nothing."""
    good = {"resourceType": "Slot", "schedule": {"reference": "Schedule/1"}, "status": "free",
            "start": "2026-12-11T17:00:00Z", "end": "2026-12-11T17:30:00Z"}
    bad = dict(good, status="nonsense", start="yesterday")
    get_fhir_model_class("Slot").parse_obj(good)
    assert not list(validator.iter_errors(good)), "the JSON schema rejects a valid Slot"
    try:
        get_fhir_model_class("Slot").parse_obj(bad)
    except Exception:
        pass
    else:
        raise SystemExit("fhir.resources accepted a broken Slot")
    assert list(validator.iter_errors(bad)), "the JSON schema accepted a broken Slot"
    good_xml = (b'<Slot xmlns="http://hl7.org/fhir"><schedule><reference value="Schedule/1"/></schedule>'
                b'<status value="free"/><start value="2026-12-11T17:00:00Z"/><end value="2026-12-11T17:30:00Z"/></Slot>')
    read = get_fhir_model_class("Slot").parse_raw(good_xml, content_type="application/fhir+xml")
    assert read.dict() == get_fhir_model_class("Slot").parse_obj(good).dict(), "the XML reader reads another Slot"
    try:
        get_fhir_model_class("Slot").parse_raw(good_xml.replace(b'2026-12-11T17:00:00Z', b'yesterday'), content_type="application/fhir+xml")
    except Exception:
        pass
    else:
        raise SystemExit("fhir.resources accepted a broken Slot in XML")


def main():
    binary, schema_path = sys.argv[1], sys.argv[2]
    schema = json.loads(pathlib.Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    self_test(validator)
    passed, failed = 0, []
    with demo_server(binary, [DEMO / "provider.ndjson", DEMO / "directory.ndjson"]) as base:
        for method, path, body, expected, validate in REQUESTS:
            headers = {"If-Match": 'W/"99"'} if method == "PUT" else None
            status, raw = call(base, method, path, body, headers)
            name = f"{method} {path}"
            if status != expected:
                failed.append(f"{name}: status {status}, expected {expected}: {raw[:200]!r}")
                continue
            doc = json.loads(raw)
            problems = []
            if validate:
                for r in resources_in(doc):
                    try:
                        get_fhir_model_class(r["resourceType"]).parse_obj(r)
                    except Exception as e:  # pydantic.ValidationError and friends
                        problems.append(f"fhir.resources: {r['resourceType']}: {str(e)[:300]}")
                errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
                problems += [f"json schema: {'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors[:3]]
            if problems:
                failed.append(f"{name}: " + "; ".join(problems))
            else:
                passed += 1
        for method, path, body, expected in XML_REQUESTS:
            problems = check_xml(base, method, path, body, expected)
            if problems:
                failed.append(f"XML {method} {path}: " + "; ".join(problems))
            else:
                passed += 1
    report(passed, failed)


if __name__ == "__main__":
    main()
