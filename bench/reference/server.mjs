// The reference receiver: what a team would build on Probot's webhook library (@octokit/webhooks).
// The same signature check as tbr (HMAC-SHA256 of the body with the webhook secret), then an
// in-memory ack: each delivery's GUID is kept in an array, nothing is written anywhere.
// Usage: node server.mjs PORT SECRET
import { createServer } from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const [port, secret] = process.argv.slice(2);
const webhooks = new Webhooks({ secret });
const received = [];
webhooks.onAny(({ id }) => { received.push(id); });

const middleware = createNodeMiddleware(webhooks, { path: "/webhook" });
createServer(async (req, res) => {
  if (req.url === "/count") {
    res.end(String(received.length));
    return;
  }
  if (!(await middleware(req, res))) {
    res.statusCode = 404;
    res.end();
  }
}).listen(Number(port), "127.0.0.1", () => console.log(`listening on ${port}`));
