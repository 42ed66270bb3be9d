// Runs the GraphQL-over-HTTP audit suite (graphql-http's auditServer) against one URL and
// prints every result as one JSON array: {id, name, status, reason?, response?} each,
// where a failed audit's response holds the status, content type and body it got.
import { auditServer } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs URL");
  process.exit(2);
}

const results = await auditServer({ url });
const printed = await Promise.all(
  results.map(async (result) => {
    if (result.status === "ok") {
      return { id: result.id, name: result.name, status: result.status };
    }
    const { response } = result;
    return {
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason,
      response: {
        status: response.status,
        contentType: response.headers.get("content-type"),
        body: (await response.clone().text()).slice(0, 500),
      },
    };
  }),
);
console.log(JSON.stringify(printed));
