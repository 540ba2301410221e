// Pages through GET [base]/Slot?start=ge..&start=lt..&_count=N with fhir-kit-client's nextPage
// and prints the number of Slots and of pages as JSON.
const Client = require('fhir-kit-client');

async function main() {
  const [baseUrl, from, to, count, token] = process.argv.slice(2);
  const client = new Client({ baseUrl, bearerToken: token });
  let bundle = await client.search({
    resourceType: 'Slot',
    searchParams: { start: [`ge${from}`, `lt${to}`], _count: count },
  });
  let slots = 0;
  let pages = 0;
  const ids = new Set();
  while (bundle) {
    pages += 1;
    for (const e of bundle.entry || []) {
      slots += 1;
      ids.add(e.resource.id);
    }
    bundle = await client.nextPage(bundle);
  }
  console.log(JSON.stringify({ slots, distinct: ids.size, pages }));
}

main().catch((e) => { console.error(e); process.exit(1); });
